package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
)

const (
	// readSize is the initial read buffer of one stream: a full Linux pipe (64 KiB) fits in one read.
	readSize = 64 << 10
	// keepSize bounds the buffer kept for reuse after a very long line: the 10 MiB line's buffer is
	// released instead of pinning 10 MiB per stream for the life of the process.
	keepSize = 1 << 20
	// redactedMark replaces every occurrence of a redacted value.
	redactedMark = "[REDACTED]"
	// MinRedactLen is the shortest value (in bytes) that is redacted: shorter values ("true", "8080") would
	// destroy ordinary output.
	MinRedactLen = 6
	// DefaultMaxLine is StreamConfig.MaxLine when it is 0: the most bytes of one line held in memory.
	DefaultMaxLine = 1 << 20
	// MinMaxLine and MaxMaxLine bound logs.max_line (bytes), the setting of StreamConfig.MaxLine a config file
	// may choose.
	MinMaxLine = 1 << 10
	MaxMaxLine = 1 << 30
)

// The formats of StreamConfig.Format (logs.format).
const (
	OutputRaw  = "raw"
	OutputJSON = "json"
)

// StreamConfig configures how the output of supervised processes reaches berth's stdout and stderr. The
// config file's logs block gives Format, Prefix and MaxLine (config decodes it into a StreamConfig); the
// writers, Redact and Fields are the caller's.
type StreamConfig struct {
	// Format is OutputRaw (the bytes as written) or OutputJSON (one
	// {"timestamp","level","job","stream","message"} object per line, the schema of berth's own JSON log).
	// Empty means raw. Set by logs.format.
	Format string
	// Prefix writes "JOB | " before every line in raw mode (and is ignored in json mode, where the job is a
	// field). Set by logs.prefix.
	Prefix bool
	// Stdout receives the stdout streams of all processes; nil means os.Stdout.
	Stdout io.Writer
	// Stderr receives the stderr streams of all processes; nil means os.Stderr. When it is the same writer
	// as Stdout, lines of both streams are serialised through one lock.
	Stderr io.Writer
	// Redact enables the replacement of the values given to SetRedactions with "[REDACTED]". The call site
	// defaults it to true (README `redact = true`); with Redact false SetRedactions is a no-op.
	Redact bool
	// MaxLine bounds the bytes of one line that a stream holds while it waits for the newline (logs.max_line);
	// 0 means DefaultMaxLine (1 MiB), negative is an error. When a line reaches it, its head is written and
	// only a tail as long as the longest redaction value is kept, so a value straddling the cut is still
	// redacted. In raw mode the output stays byte-identical; with prefix or json each piece is a line.
	MaxLine int
	// Fields are appended to every JSON line (the ECS task's, once known); nil adds nothing.
	Fields *LogFields
}

// sink is one destination (berth's stdout or stderr). Its mutex is held for the whole write of a block of
// complete lines, so lines of different processes never interleave, and a slow reader of the sink blocks the
// writers (back-pressure) instead of losing lines.
type sink struct {
	mu sync.Mutex
	w  io.Writer
}

// Streamer copies the output of supervised processes to berth's stdout/stderr, line by line.
type Streamer struct {
	log     hclog.Logger
	json    bool
	prefix  bool
	redact  bool
	maxLine int
	fields  *LogFields
	stdout  *sink
	stderr  *sink
	// match is replaced as a whole by SetRedactions; each block of lines loads it once.
	match atomic.Pointer[matcher]
	pool  sync.Pool // *streamState, reused across restarts of crash-looping jobs
}

// streamState holds the reusable buffers of one running Stream call.
type streamState struct {
	in     []byte     // bytes read, complete lines first, then the carried partial line
	red    []byte     // redacted copy of a block, when a value matched
	out    []byte     // framed (prefix/json) copy of a block
	ts     []byte     // json timestamp
	mid    []byte     // json: `","level":"…","job":"JOB","stream":"STREAM","message":`, built once per Stream call
	iv     []interval // redaction matches
	plan   *plan      // this stream's search plan for the current redaction values
	sample sampler    // byte statistics of this stream, for plan
	// covered is how many bytes at the start of the carried partial line belong to a value that was
	// redacted when the head of the line was written (a value straddling the cut): they are dropped.
	covered int
}

func newStreamState() *streamState {
	return &streamState{in: make([]byte, 0, readSize), sample: sampler{next: 1 << 10}}
}

// WithDefaults is c with Format OutputRaw where it is empty and MaxLine DefaultMaxLine where it is 0.
func (c StreamConfig) WithDefaults() StreamConfig {
	if c.Format == "" {
		c.Format = OutputRaw
	}
	if c.MaxLine == 0 {
		c.MaxLine = DefaultMaxLine
	}
	return c
}

// NewStreamer validates cfg and returns a Streamer. An unknown format is an error naming the value.
func NewStreamer(cfg StreamConfig, log hclog.Logger) (*Streamer, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	cfg = cfg.WithDefaults()
	s := &Streamer{log: log, prefix: cfg.Prefix, redact: cfg.Redact, maxLine: cfg.MaxLine, fields: cfg.Fields}
	if cfg.MaxLine < 0 {
		return nil, fmt.Errorf("logs max_line %d: want a positive number of bytes", cfg.MaxLine)
	}
	switch cfg.Format {
	case OutputRaw:
	case OutputJSON:
		s.json = true
	default:
		return nil, fmt.Errorf("logs format %q: want raw or json", cfg.Format)
	}
	out, errw := cfg.Stdout, cfg.Stderr
	if out == nil {
		out = os.Stdout
	}
	if errw == nil {
		errw = os.Stderr
	}
	s.stdout = &sink{w: out}
	if sameWriter(out, errw) {
		s.stderr = s.stdout
	} else {
		s.stderr = &sink{w: errw}
	}
	s.pool.New = func() any { return newStreamState() }
	return s, nil
}

// sameWriter reports whether a and b are the same writer, without panicking on uncomparable types.
func sameWriter(a, b io.Writer) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb || !ta.Comparable() {
		return false
	}
	return a == b
}

// SetRedactions replaces the set of values redacted from process output. Each value of at least
// MinRedactLen bytes is replaced by "[REDACTED]" wherever it appears in a line; a value that spans lines
// (a PEM key) is redacted line by line, each of its lines of at least MinRedactLen bytes on its own. Safe to
// call concurrently with Stream (on secret refresh); blocks in flight finish with the previous set. Pass the
// complete set every time, including old values that should stay redacted.
func (s *Streamer) SetRedactions(values []string) {
	if !s.redact {
		return
	}
	s.match.Store(newMatcher(values))
}

// Passthrough reports whether the streamer leaves bytes untouched (raw format, no prefix, no redaction
// values). The supervisor then hands berth's own stdout/stderr to the child directly (zero copy, TTY-safe).
// Call it after SetRedactions: secrets are resolved before any process starts.
func (s *Streamer) Passthrough() bool {
	return !s.json && !s.prefix && s.match.Load() == nil
}

// Stream copies r (the read end of a pipe of one supervised process) to the stdout or stderr sink until
// EOF and returns then. stream is "stdout" or "stderr"; job is the job name ("main" for the main command).
//
// Output is written in whole lines; a line is held until its newline arrives, up to StreamConfig.MaxLine
// bytes (then its head is written, see MaxLine), and a final line without a newline is written at EOF (raw
// mode: as is; prefix and json mode: terminated by a newline). If the sink fails, Stream keeps reading and discarding until EOF so that the process never
// blocks on a full pipe, and then returns the first write error. A read error other than EOF is returned
// after flushing what was read.
func (s *Streamer) Stream(job, stream string, r io.Reader) error {
	var sk *sink
	switch stream {
	case "stdout":
		sk = s.stdout
	case "stderr":
		sk = s.stderr
	default:
		return fmt.Errorf("stream %s of %s: want stdout or stderr", stream, job)
	}
	st := s.pool.Get().(*streamState)
	defer func() {
		if cap(st.in) > keepSize {
			st.in = make([]byte, 0, readSize)
		}
		if cap(st.red) > keepSize {
			st.red = nil
		}
		if cap(st.out) > keepSize {
			st.out = nil
		}
		st.in = st.in[:0]
		st.covered = 0
		st.plan = nil
		st.sample = sampler{next: 1 << 10}
		s.pool.Put(st)
	}()

	if s.json {
		// The level of a process line is the stream's: what the Datadog Agent gives the lines it tails from
		// a container's stdout and stderr.
		level := "info"
		if stream == "stderr" {
			level = "error"
		}
		st.mid = append(st.mid[:0], `","level":"`...)
		st.mid = append(st.mid, level...)
		st.mid = append(st.mid, `","job":`...)
		st.mid = appendJSONString(st.mid, []byte(job))
		st.mid = append(st.mid, `,"stream":"`...)
		st.mid = append(st.mid, stream...)
		st.mid = append(st.mid, `","message":`...)
	}
	buf := st.in[:0]
	scanned := 0 // buf[:scanned] holds no newline (the carried partial line)
	var werr error
	for {
		if len(buf) == cap(buf) {
			// A line longer than the buffer: grow (up to about twice MaxLine, see below).
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			buf = nb
		}
		// Read no further than MaxLine (plus the redaction tail) into a partial line, so that a line is cut
		// into pieces of at most MaxLine bytes.
		end := cap(buf)
		if limit := s.maxLine + s.tail(); limit > len(buf) && limit < end {
			end = limit
		}
		n, rerr := r.Read(buf[len(buf):end])
		buf = buf[:len(buf)+n]
		if n > 0 {
			if i := bytes.LastIndexByte(buf[scanned:], '\n'); i >= 0 {
				end := scanned + i + 1
				werr = s.emit(sk, st, job, stream, buf[:end], false, werr)
				buf = buf[:copy(buf, buf[end:])]
				if cap(buf) > keepSize && len(buf) < readSize {
					nb := make([]byte, len(buf), readSize)
					copy(nb, buf)
					buf = nb
				}
			}
			if len(buf) >= s.maxLine {
				// The partial line reached MaxLine: write its head, keep a tail for redaction. The buffer
				// keeps its size, the line goes on.
				var cut int
				cut, werr = s.emitHead(sk, st, job, stream, buf, werr)
				buf = buf[:copy(buf, buf[cut:])]
			}
			scanned = len(buf)
		}
		if rerr != nil {
			if len(buf) > 0 {
				werr = s.emit(sk, st, job, stream, buf, true, werr)
			}
			st.in = buf
			switch {
			case errors.Is(rerr, io.EOF):
				if werr != nil {
					return fmt.Errorf("%s %s: %w", job, stream, werr)
				}
				return nil
			case werr != nil:
				return fmt.Errorf("%s %s: %w", job, stream, errors.Join(rerr, werr))
			default:
				return fmt.Errorf("%s %s: read: %w", job, stream, rerr)
			}
		}
	}
}

// tail is how many bytes of a cut line are kept: one fewer than the longest redaction value.
func (s *Streamer) tail() int {
	if m := s.match.Load(); m != nil {
		return m.maxLen - 1
	}
	return 0
}

// emitHead writes the head of buf, a partial line of at least MaxLine bytes, and returns where it cut: the
// tail kept is one byte shorter than the longest redaction value, so that a value of which only a prefix
// has arrived is still found whole later; in prefix and json mode the cut is moved back to the start of a
// UTF-8 sequence. A value found across the cut is redacted in the head, and its rest in the tail is marked
// covered. cut is 0 when nothing can be written yet (a value longer than the line so far).
func (s *Streamer) emitHead(sk *sink, st *streamState, job, stream string, buf []byte, werr error) (int, error) {
	m := s.match.Load()
	cut := len(buf)
	if m != nil {
		cut -= m.maxLen - 1
	}
	if (s.json || s.prefix) && cut > 0 {
		// do not end the piece with an incomplete UTF-8 sequence
		for i := cut - 1; i >= max(0, cut-utf8.UTFMax+1); i-- {
			if utf8.RuneStart(buf[i]) {
				if !utf8.FullRune(buf[i:cut]) {
					cut = i
				}
				break
			}
		}
	}
	if cut <= 0 {
		return 0, werr
	}
	if werr != nil {
		return cut, werr
	}
	head := buf[:cut]
	if m != nil || st.covered > 0 {
		var covered int
		head, covered = st.redactHead(m, buf, cut)
		st.covered = covered
	}
	return cut, s.write(sk, st, job, stream, head)
}

// emit writes block (complete lines, or the final partial line when last) to sk after redaction and
// framing. After a write error it discards, so that the caller keeps draining the pipe.
func (s *Streamer) emit(sk *sink, st *streamState, job, stream string, block []byte, last bool, werr error) error {
	if werr != nil {
		return werr
	}
	if m := s.match.Load(); m != nil || st.covered > 0 {
		block, _ = st.redactHead(m, block, len(block))
		st.covered = 0
	}
	return s.write(sk, st, job, stream, block)
}

// write frames block (prefix, json) and writes it to sk.
func (s *Streamer) write(sk *sink, st *streamState, job, stream string, block []byte) error {
	data := block
	switch {
	case s.json:
		st.out = frameJSON(st, st.out[:0], block, s.fields.load())
		data = st.out
	case s.prefix:
		st.out = framePrefix(st.out[:0], job, block)
		data = st.out
	}
	sk.mu.Lock()
	_, err := sk.w.Write(data)
	sk.mu.Unlock()
	if err != nil {
		s.log.Error("writing process output failed; discarding the rest of the stream", "job", job, "stream", stream, "error", err)
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// framePrefix appends "JOB | line" for every line of block; a final line without newline gets one.
func framePrefix(dst []byte, job string, block []byte) []byte {
	for len(block) > 0 {
		i := bytes.IndexByte(block, '\n')
		var line []byte
		if i < 0 {
			line, block = block, nil
		} else {
			line, block = block[:i], block[i+1:]
		}
		dst = append(dst, job...)
		dst = append(dst, " | "...)
		dst = append(dst, line...)
		dst = append(dst, '\n')
	}
	return dst
}

// frameJSON appends one JSON object per line of block, with the encoded fields before its closing brace.
// All lines of a block share the time of its read.
func frameJSON(st *streamState, dst []byte, block, fields []byte) []byte {
	st.ts = time.Now().UTC().AppendFormat(st.ts[:0], time.RFC3339Nano)
	for len(block) > 0 {
		i := bytes.IndexByte(block, '\n')
		var line []byte
		if i < 0 {
			line, block = block, nil
		} else {
			line, block = block[:i], block[i+1:]
		}
		dst = append(dst, `{"timestamp":"`...)
		dst = append(dst, st.ts...)
		dst = append(dst, st.mid...)
		dst = appendJSONString(dst, line)
		dst = append(dst, fields...)
		dst = append(dst, "}\n"...)
	}
	return dst
}
