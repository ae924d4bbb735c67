package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
)

// Request bodies of the POST endpoints. Pointers mark required fields.
type (
	maintenanceRequest struct {
		Enable *bool  `json:"enable"`
		Reason string `json:"reason"`
	}
	envRequest struct {
		Key   string  `json:"key"`
		Value *string `json:"value"`
	}
	metricRequest struct {
		Name  string   `json:"name"`
		Value *float64 `json:"value"`
	}
	okResponse struct {
		OK bool `json:"ok"`
	}
	errorResponse struct {
		Error string `json:"error"`
	}
)

// handler routes the API. ctx is the context for backend calls that change state (ends at shutdown).
func (s *Server) handler(ctx context.Context) http.Handler {
	// An exact-path table rather than http.ServeMux: the mux answers unclean paths with HTML redirects and wrong
	// methods with text/plain, and every answer of this API is JSON.
	routes := map[string]http.HandlerFunc{
		"/v1/status": s.only(http.MethodGet, s.handleStatus),
		"/v1/health": s.only(http.MethodGet, s.handleHealth),
		"/v1/reload": s.only(http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
			s.handleReload(ctx, w, r)
		}),
		"/v1/maintenance": s.only(http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
			s.handleMaintenance(ctx, w, r)
		}),
		"/v1/env":    s.only(http.MethodPost, s.handleEnv),
		"/v1/metric": s.only(http.MethodPost, s.handleMetric),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := routes[r.URL.Path]
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %q", r.URL.Path))
			return
		}
		h(w, r)
	})
}

func (s *Server) only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: method not allowed (use %s)", r.Method, r.URL.Path, method))
			return
		}
		h(w, r)
	}
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	s.writeJSON(w, http.StatusOK, s.backend.Status())
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	ok, detail := s.backend.Health()
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	s.writeJSON(w, code, detail)
}

func (s *Server) handleReload(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if !s.decode(w, r, &struct{}{}, true) {
		return
	}
	// A reload that arrives while another runs waits for it and then runs itself, so it reads a config at least
	// as new as the request (not coalesced, not 409: `berth ctl reload` after an edit must apply that edit).
	select {
	case s.reloadSem <- struct{}{}:
	case <-r.Context().Done():
		writeError(w, http.StatusServiceUnavailable, "reload abandoned: berth is shutting down or the client went away")
		return
	}
	defer func() { <-s.reloadSem }()
	s.log.Info("reload requested")
	if err := s.backend.Reload(ctx); err != nil {
		s.log.Warn("reload failed", "error", err)
		s.writeBackendError(ctx, w, err)
		return
	}
	s.log.Info("reload done")
	s.writeJSON(w, http.StatusOK, okResponse{OK: true})
}

func (s *Server) handleMaintenance(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	var req maintenanceRequest
	if !s.decode(w, r, &req, false) {
		return
	}
	if req.Enable == nil {
		writeError(w, http.StatusBadRequest, `missing field "enable" (true or false)`)
		return
	}
	select {
	case s.maintSem <- struct{}{}:
	case <-r.Context().Done():
		writeError(w, http.StatusServiceUnavailable, "maintenance abandoned: berth is shutting down or the client went away")
		return
	}
	defer func() { <-s.maintSem }()
	s.log.Info("maintenance requested", "enable", *req.Enable, "reason", req.Reason)
	if err := s.backend.Maintenance(ctx, *req.Enable, req.Reason); err != nil {
		s.log.Warn("maintenance failed", "enable", *req.Enable, "error", err)
		s.writeBackendError(ctx, w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, okResponse{OK: true})
}

func (s *Server) handleEnv(w http.ResponseWriter, r *http.Request) {
	var req envRequest
	if !s.decode(w, r, &req, false) {
		return
	}
	if err := validateEnv(req.Key, req.Value); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The value may be a secret: it is never logged nor echoed.
	s.log.Info("putenv", "key", req.Key)
	if err := s.backend.PutEnv(req.Key, *req.Value); err != nil {
		s.writeBackendError(r.Context(), w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, okResponse{OK: true})
}

func (s *Server) handleMetric(w http.ResponseWriter, r *http.Request) {
	var req metricRequest
	if !s.decode(w, r, &req, false) {
		return
	}
	if err := validateMetric(req.Name, req.Value); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.log.Debug("putmetric", "name", req.Name, "value", *req.Value)
	if err := s.backend.PutMetric(req.Name, *req.Value); err != nil {
		s.writeBackendError(r.Context(), w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, okResponse{OK: true})
}

// validateEnv checks a putenv request: a POSIX name (the portable [A-Za-z_][A-Za-z0-9_]*) and a value that
// exec can pass (no NUL). Messages never contain the value.
func validateEnv(key string, value *string) error {
	if !ValidEnvKey(key) {
		return fmt.Errorf("invalid environment variable name %q: want [A-Za-z_][A-Za-z0-9_]*", key)
	}
	if value == nil {
		return errors.New(`missing field "value"`)
	}
	if strings.IndexByte(*value, 0) >= 0 {
		return fmt.Errorf("value of %s contains a NUL byte", key)
	}
	return nil
}

// validateMetric checks a putmetric request.
func validateMetric(name string, value *float64) error {
	if !ValidMetricName(name) {
		return fmt.Errorf("invalid metric name %q: want [A-Za-z0-9_.]+", name)
	}
	if value == nil {
		return errors.New(`missing field "value"`)
	}
	if math.IsNaN(*value) || math.IsInf(*value, 0) {
		return fmt.Errorf("value of metric %s is not a finite number", name)
	}
	return nil
}

// ValidEnvKey reports whether key is a portable POSIX environment variable name: [A-Za-z_][A-Za-z0-9_]*.
func ValidEnvKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidMetricName reports whether name is an acceptable metric name: [A-Za-z0-9_.]+.
func ValidMetricName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c == '.' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// decode reads a JSON object body of at most MaxBodyBytes into v, rejecting unknown fields and trailing data;
// with allowEmpty an empty body is accepted. On failure it writes the error answer and returns false. Messages
// describe where the body is wrong but never quote it: a putenv body carries a value that may be secret.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes))
			return false
		}
		writeError(w, http.StatusBadRequest, "reading request body: "+err.Error())
		return false
	}
	if allowEmpty && len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, r.URL.Path+": invalid JSON body: "+describeJSONError(err))
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, r.URL.Path+": invalid JSON body: data after the object")
		return false
	}
	return true
}

// describeJSONError names the position or field of a decoding error without quoting the input.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body, want a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("want a JSON object, not %s", typ.Value)
		}
		return fmt.Sprintf("field %q must be a %s", typ.Field, jsonKind(typ.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	default:
		return "cannot decode"
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "bool":
		return "boolean"
	case "float64":
		return "number"
	default:
		return goKind
	}
}

// writeBackendError maps a backend error to its status: *InvalidError 400, *RejectedError 409, cancelled by
// shutdown 503, anything else 500. The message is the backend's (which must not contain secret values).
func (s *Server) writeBackendError(ctx context.Context, w http.ResponseWriter, err error) {
	var invalid *InvalidError
	var rejected *RejectedError
	code := http.StatusInternalServerError
	switch {
	case errors.As(err, &invalid):
		code = http.StatusBadRequest
	case errors.As(err, &rejected):
		code = http.StatusConflict
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		code = http.StatusServiceUnavailable
	}
	writeError(w, code, err.Error())
}

// writeJSON encodes v before writing the header, so an unencodable document becomes a clean 500.
func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// The encoder error may quote a value from the document; log it, answer generically.
		s.log.Error("cannot encode response", "error", err)
		writeError(w, http.StatusInternalServerError, "cannot encode the response document")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	body, _ := json.Marshal(errorResponse{Error: msg}) // a struct of one string always encodes
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}
