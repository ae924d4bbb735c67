package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

// pipeStream writes data into a real os.Pipe in chunks of chunk bytes (0: one write) from a goroutine, then
// closes it, while Stream reads the other end. It returns Stream's error.
func pipeStream(t *testing.T, s *Streamer, job, stream string, data []byte, chunk int) error {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		defer w.Close()
		if chunk <= 0 {
			chunk = len(data) + 1
		}
		for rest := data; len(rest) > 0; {
			n := min(chunk, len(rest))
			if _, err := w.Write(rest[:n]); err != nil {
				done <- err
				return
			}
			rest = rest[n:]
		}
		done <- nil
	}()
	t.Cleanup(func() { r.Close() })
	serr := s.Stream(job, stream, r)
	if werr := <-done; werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	return serr
}

func newTestStreamer(t *testing.T, cfg StreamConfig) (*Streamer, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var out, errb bytes.Buffer
	if cfg.Stdout == nil {
		cfg.Stdout = &out
	}
	if cfg.Stderr == nil {
		cfg.Stderr = &errb
	}
	s, err := NewStreamer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, &out, &errb
}

func binaryish(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

func manyLines(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "line %d of the log\n", i)
	}
	return b.Bytes()
}

func TestStreamRawByteIdentical(t *testing.T) {
	oneMiB := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	tenMiB := append(bytes.Repeat([]byte("x"), 10<<20), '\n')
	tests := []struct {
		name  string
		data  []byte
		chunk int
	}{
		{"1MiB single line without newline", oneMiB, 4096},
		{"10MiB single line", tenMiB, 0},
		{"binary-ish bytes", binaryish(3 << 20), 1000},
		{"100k short lines", manyLines(100_000), 777},
		{"empty", nil, 0},
		{"only newlines", []byte("\n\n\n"), 1},
		{"final partial line", []byte("a\nb\nlast words"), 3},
	}
	for _, redact := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/redact=%v", tt.name, redact), func(t *testing.T) {
				s, out, errb := newTestStreamer(t, StreamConfig{Redact: redact})
				// A value that never occurs: the redaction path runs but must not change a byte.
				s.SetRedactions([]string{"never-in-the-output-\x01\x02\x03"})
				if err := pipeStream(t, s, "main", "stdout", tt.data, tt.chunk); err != nil {
					t.Fatal(err)
				}
				if have := out.Bytes(); !bytes.Equal(have, tt.data) {
					t.Fatalf("stdout differs: want %d bytes, have %d", len(tt.data), len(have))
				}
				if errb.Len() != 0 {
					t.Fatalf("stderr got %d bytes", errb.Len())
				}
			})
		}
	}
}

// TestStreamChildProcess runs a real child writing to both streams, interleaved, up to the moment it exits.
func TestStreamChildProcess(t *testing.T) {
	s, out, errb := newTestStreamer(t, StreamConfig{})
	script := `i=0; while [ $i -lt 2000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; printf 'last out'; printf 'last err' >&2`
	cmd := exec.Command("sh", "-c", script)
	or, ow, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	er, ew, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = ow, ew
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ow.Close()
	ew.Close()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = s.Stream("main", "stdout", or) }()
	go func() { defer wg.Done(); errs[1] = s.Stream("main", "stderr", er) }()
	wg.Wait()
	or.Close()
	er.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var wantOut, wantErr strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&wantOut, "out %d\n", i)
		fmt.Fprintf(&wantErr, "err %d\n", i)
	}
	wantOut.WriteString("last out")
	wantErr.WriteString("last err")
	if have := out.String(); have != wantOut.String() {
		t.Errorf("stdout: want %d bytes ending %q, have %d bytes ending %q", wantOut.Len(), tail(wantOut.String()), len(have), tail(have))
	}
	if have := errb.String(); have != wantErr.String() {
		t.Errorf("stderr: want %d bytes ending %q, have %d bytes ending %q", wantErr.Len(), tail(wantErr.String()), len(have), tail(have))
	}
}

func tail(s string) string { return s[max(0, len(s)-40):] }

// TestStreamLinesNeverInterleave streams long lines (larger than a pipe buffer) of several processes into
// one sink at once; every output line must be one whole input line.
func TestStreamLinesNeverInterleave(t *testing.T) {
	var shared bytes.Buffer
	s, _, _ := newTestStreamer(t, StreamConfig{Stdout: &shared, Stderr: &shared})
	const writers, lines = 4, 20
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for wi := range writers {
		var data []byte
		for li := range lines {
			data = append(data, bytes.Repeat([]byte{byte('a' + wi)}, 100_000+li)...)
			data = append(data, '\n')
		}
		stream := []string{"stdout", "stderr"}[wi%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, w, err := os.Pipe()
			if err != nil {
				errs[wi] = err
				return
			}
			defer r.Close()
			go func() {
				defer w.Close()
				for rest := data; len(rest) > 0; {
					n := min(1500, len(rest))
					if _, err := w.Write(rest[:n]); err != nil {
						return
					}
					rest = rest[n:]
				}
			}()
			errs[wi] = s.Stream(fmt.Sprintf("job%d", wi), stream, r)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	have := strings.Split(strings.TrimSuffix(shared.String(), "\n"), "\n")
	if len(have) != writers*lines {
		t.Fatalf("want %d lines, have %d", writers*lines, len(have))
	}
	next := make([]int, writers) // per writer, the next line index expected (order within a stream)
	for n, line := range have {
		wi := int(line[0] - 'a')
		if wi < 0 || wi >= writers || strings.Trim(line, line[:1]) != "" {
			t.Fatalf("line %d mixes writers: starts %q", n, line[:min(20, len(line))])
		}
		if want := 100_000 + next[wi]; len(line) != want {
			t.Fatalf("line %d of writer %d: want length %d, have %d", n, wi, want, len(line))
		}
		next[wi]++
	}
}

func TestStreamJSON(t *testing.T) {
	input := []byte("hello world\n" +
		"quote \" backslash \\ tab \t cr \r\n" +
		"binary \x00\x01\x1f\x7f\xff\xfe end\n" +
		"ünïcödé ✓ \xe2\x28\xa1\n" +
		"\n" +
		"no newline at the end")
	wantMessages := []string{
		"hello world",
		"quote \" backslash \\ tab \t cr \r",
		"binary \x00\x01\x1f\x7f\ufffd\ufffd end",
		"ünïcödé ✓ \ufffd(\ufffd",
		"",
		"no newline at the end",
	}
	s, _, errb := newTestStreamer(t, StreamConfig{Format: "json"})
	if s.Passthrough() {
		t.Fatal("json streamer reports passthrough")
	}
	if err := pipeStream(t, s, `we"ird\job`, "stderr", input, 5); err != nil {
		t.Fatal(err)
	}
	out := errb.String()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("json output does not end with a newline: %q", tail(out))
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(wantMessages) {
		t.Fatalf("want %d lines, have %d:\n%s", len(wantMessages), len(lines), out)
	}
	for i, line := range lines {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if !json.Valid([]byte(line)) {
				t.Fatalf("invalid JSON: %s", line)
			}
			var have struct{ Timestamp, Level, Job, Stream, Message string }
			dec := json.NewDecoder(strings.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&have); err != nil {
				t.Fatal(err)
			}
			if have.Message != wantMessages[i] {
				t.Errorf("message: want %q, have %q", wantMessages[i], have.Message)
			}
			if _, err := time.Parse(time.RFC3339Nano, have.Timestamp); err != nil || !strings.HasSuffix(have.Timestamp, "Z") {
				t.Errorf("timestamp %q: want RFC 3339 in UTC (%v)", have.Timestamp, err)
			}
			if have.Job != `we"ird\job` || have.Stream != "stderr" || have.Level != "error" {
				t.Errorf("fields: %+v", have)
			}
		})
	}
}

func TestStreamPrefix(t *testing.T) {
	s, out, _ := newTestStreamer(t, StreamConfig{Prefix: true})
	if err := pipeStream(t, s, "migrate", "stdout", []byte("one\n\ntwo\nthree"), 2); err != nil {
		t.Fatal(err)
	}
	want := "migrate | one\nmigrate | \nmigrate | two\nmigrate | three\n"
	if have := out.String(); have != want {
		t.Fatalf("want %q, have %q", want, have)
	}
}

func TestStreamRedaction(t *testing.T) {
	values := []string{"hunter2-password", "AKIAIOSFODNN7EXAMPLE", "short", "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\r\nabc\n-----END KEY-----", "s3cr3t", "aaaaaa"}
	tests := []struct {
		name, in, want string
	}{
		{"plain", "password is hunter2-password ok\n", "password is [REDACTED] ok\n"},
		{"twice in a line", "AKIAIOSFODNN7EXAMPLE:AKIAIOSFODNN7EXAMPLE\n", "[REDACTED]:[REDACTED]\n"},
		{"at line start and end", "s3cr3t\nxs3cr3t\ns3cr3tx\n", "[REDACTED]\nx[REDACTED]\n[REDACTED]x\n"},
		{"shorter than 6 bytes is kept", "short and sweet\n", "short and sweet\n"},
		{"multi-line value line by line", "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\nabc\n-----END KEY-----\n", "[REDACTED]\n[REDACTED]\nabc\n[REDACTED]\n"},
		{"overlapping occurrences", "aaaaaaaaa\n", "[REDACTED]\n"},
		{"prefix of a value is kept", "hunter2-passwor\n", "hunter2-passwor\n"},
		{"final partial line", "tail s3cr3t", "tail [REDACTED]"},
		{"no match", "nothing to see\n", "nothing to see\n"},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 3, 7} {
			t.Run(fmt.Sprintf("%s/chunk=%d", tt.name, chunk), func(t *testing.T) {
				s, out, _ := newTestStreamer(t, StreamConfig{Redact: true})
				s.SetRedactions(values)
				if s.Passthrough() {
					t.Fatal("passthrough with redactions")
				}
				// Chunks of 1..7 bytes split each value across many read() calls of the same line.
				var r io.Reader = strings.NewReader(tt.in)
				if chunk > 0 {
					r = io.LimitReader(iotest.HalfReader(&chunkReader{r: r, n: chunk}), int64(len(tt.in)))
				}
				if err := s.Stream("main", "stdout", r); err != nil {
					t.Fatal(err)
				}
				if have := out.String(); have != tt.want {
					t.Fatalf("want %q, have %q", tt.want, have)
				}
			})
		}
	}
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

func TestStreamRedactionSplitAcrossPipeWrites(t *testing.T) {
	s, out, _ := newTestStreamer(t, StreamConfig{Redact: true, Format: "json"})
	s.SetRedactions([]string{"correct-horse-battery"})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	done := make(chan error, 1)
	go func() { done <- s.Stream("main", "stdout", r) }()
	// Two separate writes, each its own read() on the other side, the value split between them.
	for _, part := range []string{"token=correct-hor", "se-battery!\n"} {
		if _, err := w.WriteString(part); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if have := out.String(); strings.Contains(have, "horse") || !strings.Contains(have, `"message":"token=[REDACTED]!"`) {
		t.Fatalf("value not redacted: %s", have)
	}
}

func TestSetRedactionsReplaces(t *testing.T) {
	s, out, _ := newTestStreamer(t, StreamConfig{Redact: true})
	s.SetRedactions([]string{"old-secret"})
	if err := s.Stream("main", "stdout", strings.NewReader("old-secret new-secret\n")); err != nil {
		t.Fatal(err)
	}
	s.SetRedactions([]string{"new-secret"})
	if err := s.Stream("main", "stdout", strings.NewReader("old-secret new-secret\n")); err != nil {
		t.Fatal(err)
	}
	want := "[REDACTED] new-secret\nold-secret [REDACTED]\n"
	if have := out.String(); have != want {
		t.Fatalf("want %q, have %q", want, have)
	}
}

func TestPassthrough(t *testing.T) {
	tests := []struct {
		name   string
		cfg    StreamConfig
		values []string
		want   bool
	}{
		{"raw", StreamConfig{}, nil, true},
		{"raw redact without values", StreamConfig{Redact: true}, nil, true},
		{"raw redact only short values", StreamConfig{Redact: true}, []string{"abc"}, true},
		{"raw redact with values", StreamConfig{Redact: true}, []string{"secret-value"}, false},
		{"redact off ignores values", StreamConfig{Redact: false}, []string{"secret-value"}, true},
		{"prefix", StreamConfig{Prefix: true}, nil, false},
		{"json", StreamConfig{Format: "json"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _ := newTestStreamer(t, tt.cfg)
			s.SetRedactions(tt.values)
			if have := s.Passthrough(); have != tt.want {
				t.Fatalf("want %v, have %v", tt.want, have)
			}
		})
	}
}

func TestNewStreamerErrors(t *testing.T) {
	if _, err := NewStreamer(StreamConfig{Format: "xml"}, nil); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Fatalf("want an error naming \"xml\", have %v", err)
	}
	s, _, _ := newTestStreamer(t, StreamConfig{})
	if err := s.Stream("main", "stdin", strings.NewReader("x")); err == nil {
		t.Fatal("want an error for stream stdin")
	}
}

type failWriter struct{ writes int }

func (f *failWriter) Write(p []byte) (int, error) { f.writes++; return 0, errors.New("sink gone") }

// TestStreamWriteErrorDrains: a broken sink must not block the process on a full pipe.
func TestStreamWriteErrorDrains(t *testing.T) {
	fw := &failWriter{}
	s, _, _ := newTestStreamer(t, StreamConfig{Stdout: fw})
	err := pipeStream(t, s, "main", "stdout", manyLines(200_000), 0) // ~5 MB, far more than a pipe holds
	if err == nil || !strings.Contains(err.Error(), "sink gone") {
		t.Fatalf("want the write error, have %v", err)
	}
	if fw.writes != 1 {
		t.Fatalf("want 1 write attempt, have %d", fw.writes)
	}
}

func TestStreamReadError(t *testing.T) {
	s, out, _ := newTestStreamer(t, StreamConfig{})
	r := io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(errors.New("boom")))
	err := s.Stream("main", "stdout", r)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("want the read error, have %v", err)
	}
	if have := out.String(); have != "partial" {
		t.Fatalf("what was read must be flushed: have %q", have)
	}
}

// naiveRedact is the reference for the fuzz test: every position, every piece, then merge.
func naiveRedact(values []string, in []byte) []byte {
	var pieces []string
	for _, v := range values {
		for _, p := range strings.Split(v, "\n") {
			if p = strings.TrimSuffix(p, "\r"); len(p) >= MinRedactLen {
				pieces = append(pieces, p)
			}
		}
	}
	cover := make([]bool, len(in))
	for i := range in {
		for _, p := range pieces {
			if bytes.HasPrefix(in[i:], []byte(p)) {
				for k := i; k < i+len(p); k++ {
					cover[k] = true
				}
			}
		}
	}
	var out []byte
	for i := 0; i < len(in); {
		if !cover[i] {
			out = append(out, in[i])
			i++
			continue
		}
		out = append(out, redactedMark...)
		for i < len(in) && cover[i] {
			i++
		}
	}
	return out
}

func FuzzRedact(f *testing.F) {
	f.Add("secret", "abc", "a secret line\nsecretsecret\n")
	f.Add("aaaaaa", "aaaaaaa", "aaaaaaaaaaaaaa")
	f.Add("xy\nzzzzzzz", "\x00\x01\x02\x03\x04\x05", "zzzzzzz\x00\x01\x02\x03\x04\x05\n")
	f.Fuzz(func(t *testing.T, v1, v2, in string) {
		values := []string{v1, v2}
		m := newMatcher(values)
		var have []byte
		if m == nil {
			have = []byte(in)
		} else {
			have = newStreamState().redact(m, []byte(in))
		}
		// Adjacent but not overlapping matches give two marks in redact and one in the reference; compare
		// with runs of marks collapsed.
		collapse := func(b []byte) string {
			s := string(b)
			for strings.Contains(s, redactedMark+redactedMark) {
				s = strings.ReplaceAll(s, redactedMark+redactedMark, redactedMark)
			}
			return s
		}
		if want := naiveRedact(values, []byte(in)); collapse(have) != collapse(want) {
			t.Fatalf("values %q, input %q:\nwant %q\nhave %q", values, in, want, have)
		}
	})
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add([]byte("plain"))
	f.Add([]byte("\x00\"\\\n\r\t\x7f\xff\xe2\x28\xa1ü✓"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := appendJSONString(nil, in)
		var have string
		if err := json.Unmarshal(out, &have); err != nil {
			t.Fatalf("%q gives invalid JSON %s: %v", in, out, err)
		}
		if want := strings.ToValidUTF8(string(in), "\ufffd"); utf8.Valid(in) && have != want {
			t.Fatalf("want %q, have %q", want, have)
		} else if !utf8.Valid(in) && utf8.RuneCountInString(have) < utf8.RuneCountInString(want) {
			t.Fatalf("lost characters: want %q, have %q", want, have)
		}
	})
}

func FuzzStreamRaw(f *testing.F) {
	f.Add([]byte("a\nbb\n\nccc"), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		var out bytes.Buffer
		s, err := NewStreamer(StreamConfig{Stdout: &out, Stderr: io.Discard}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := &chunkReader{r: bytes.NewReader(in), n: int(chunk%16) + 1}
		if err := s.Stream("j", "stdout", r); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("want %q, have %q", in, out.Bytes())
		}
	})
}
