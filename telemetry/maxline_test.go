package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// collapse folds runs of marks into one: adjacent (not overlapping) matches give two marks in the stream and
// one in naiveRedact.
func collapse(b []byte) string {
	s := string(b)
	for strings.Contains(s, redactedMark+redactedMark) {
		s = strings.ReplaceAll(s, redactedMark+redactedMark, redactedMark)
	}
	return s
}

// capReader reads from r at most n bytes per Read and records the largest buffer Stream offered, which is
// what the stream's line buffer has grown to.
type capReader struct {
	r      io.Reader
	n      int
	maxCap int
}

func (c *capReader) Read(p []byte) (int, error) {
	c.maxCap = max(c.maxCap, cap(p))
	if c.n > 0 && len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// letters is n bytes of a..z without newline.
func letters(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i*7%26)
	}
	return b
}

// TestStreamMaxLineRedactsAcrossTheCut puts a value at every offset around the first cuts of a long line
// and checks the raw output against redaction of the whole line: no byte of the value gets through.
func TestStreamMaxLineRedactsAcrossTheCut(t *testing.T) {
	const maxLine = 64
	values := []string{"SECRET-VALUE-0123456789", "overlapping-aaaaaa", "aaaaaa-tail"}
	for _, chunk := range []int{1, 5, 64, 1000} {
		for pos := 0; pos < 3*maxLine; pos++ {
			for _, v := range values[:2] {
				in := letters(4 * maxLine)
				in = append(in[:pos:pos], append([]byte(v), in[pos:]...)...)
				if pos%3 == 0 {
					in = append(in, "aaaaaa-tail"...) // overlapping values around the end
				}
				s, out, _ := newTestStreamer(t, StreamConfig{Redact: true, MaxLine: maxLine})
				s.SetRedactions(values)
				if err := s.Stream("main", "stdout", &capReader{r: bytes.NewReader(in), n: chunk}); err != nil {
					t.Fatal(err)
				}
				want := naiveRedact(values, in)
				if have := out.Bytes(); collapse(have) != collapse(want) {
					t.Fatalf("value %q at %d, chunk %d:\nwant %q\nhave %q", v, pos, chunk, want, have)
				}
				if strings.Contains(out.String(), "SECRET") || strings.Contains(out.String(), "0123") {
					t.Fatalf("value leaked at %d, chunk %d: %q", pos, chunk, out.String())
				}
			}
		}
	}
}

// TestStreamMaxLineBoundsMemory: 20 MiB without a newline pass through a stream whose buffer stays near
// MaxLine (it used to grow to the whole line), raw bytes unchanged.
func TestStreamMaxLineBoundsMemory(t *testing.T) {
	in := letters(20 << 20)
	for _, cfg := range []StreamConfig{{Redact: true}, {Prefix: true}, {Format: "json"}} {
		t.Run(fmt.Sprintf("json=%v,prefix=%v", cfg.Format == "json", cfg.Prefix), func(t *testing.T) {
			var out bytes.Buffer
			cfg.Stdout = &out
			s, err := NewStreamer(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.SetRedactions([]string{"never-in-the-output"})
			r := &capReader{r: bytes.NewReader(in)}
			if err := s.Stream("main", "stdout", r); err != nil {
				t.Fatal(err)
			}
			if r.maxCap > 2*DefaultMaxLine+readSize {
				t.Fatalf("the line buffer grew to %d bytes", r.maxCap)
			}
			switch {
			case cfg.Format == "json":
				var msg strings.Builder
				lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
				for _, l := range lines {
					var o struct{ Message string }
					if err := json.Unmarshal([]byte(l), &o); err != nil {
						t.Fatal(err)
					}
					if len(o.Message) > DefaultMaxLine {
						t.Fatalf("a piece of %d bytes", len(o.Message))
					}
					msg.WriteString(o.Message)
				}
				if msg.String() != string(in) || len(lines) < 20 {
					t.Fatalf("json: %d pieces, %d bytes", len(lines), msg.Len())
				}
			case cfg.Prefix:
				if have := strings.ReplaceAll(strings.ReplaceAll(out.String(), "main | ", ""), "\n", ""); have != string(in) {
					t.Fatalf("prefix: %d bytes", len(have))
				}
			default:
				if !bytes.Equal(out.Bytes(), in) {
					t.Fatalf("raw: want %d bytes, have %d", len(in), out.Len())
				}
			}
		})
	}
}

// TestStreamMaxLineFramed: with prefix and json a long line becomes lines of at most MaxLine bytes, never
// cut inside a UTF-8 sequence; complete lines are unchanged.
func TestStreamMaxLineFramed(t *testing.T) {
	line := strings.Repeat("ü✓x", 20) // 2+3+1 bytes, 120 in all
	in := "short\n" + line + "\nend"
	s, out, _ := newTestStreamer(t, StreamConfig{Format: "json", MaxLine: 16})
	if err := pipeStream(t, s, "main", "stdout", []byte(in), 7); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var o struct{ Message string }
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsRune(o.Message, utf8.RuneError) || len(o.Message) > 16+utf8.UTFMax {
			t.Fatalf("bad piece %q", o.Message)
		}
		msgs = append(msgs, o.Message)
	}
	if msgs[0] != "short" || msgs[len(msgs)-1] != "end" || strings.Join(msgs[1:len(msgs)-1], "") != line {
		t.Fatalf("pieces %q", msgs)
	}

	s, out, _ = newTestStreamer(t, StreamConfig{Prefix: true, MaxLine: 16})
	if err := pipeStream(t, s, "web", "stdout", []byte("0123456789abcdefghijklmnopqrstuvwxyz\nok\n"), 0); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if !strings.HasPrefix(l, "web | ") || len(l) > len("web | ")+16+readSize {
			t.Fatalf("bad line %q in %q", l, out.String())
		}
	}
	if have := strings.ReplaceAll(out.String(), "web | ", ""); strings.ReplaceAll(have, "\n", "") != "0123456789abcdefghijklmnopqrstuvwxyzok" {
		t.Fatalf("prefix output %q", out.String())
	}
}

func TestStreamMaxLineConfig(t *testing.T) {
	if _, err := NewStreamer(StreamConfig{MaxLine: -1}, nil); err == nil || !strings.Contains(err.Error(), "max_line") {
		t.Fatalf("want an error naming max_line, have %v", err)
	}
	s, err := NewStreamer(StreamConfig{}, nil)
	if err != nil || s.maxLine != DefaultMaxLine {
		t.Fatalf("default max line %d, %v", s.maxLine, err)
	}
}

// FuzzStreamMaxLine: whatever the cap, the chunking and the values, raw output equals redaction of the whole
// input (runs of marks collapsed).
func FuzzStreamMaxLine(f *testing.F) {
	f.Add("secret", "aaaaaaa", []byte("xx secret yy aaaaaaaaa secr\nsecret"), uint16(8), uint8(3))
	f.Add("0123456789", "6789ab", []byte("----0123456789abcdef----"), uint16(5), uint8(1))
	f.Add("aaaaaa", "aaaaab", []byte(strings.Repeat("a", 100)+"b"), uint16(7), uint8(2))
	f.Fuzz(func(t *testing.T, v1, v2 string, in []byte, maxLine uint16, chunk uint8) {
		if maxLine == 0 || len(in) > 4<<10 {
			return
		}
		values := []string{v1, v2}
		var out bytes.Buffer
		s, err := NewStreamer(StreamConfig{Stdout: &out, Stderr: io.Discard, Redact: true, MaxLine: int(maxLine)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.SetRedactions(values)
		if err := s.Stream("j", "stdout", &chunkReader{r: bytes.NewReader(in), n: int(chunk%32) + 1}); err != nil {
			t.Fatal(err)
		}
		want := naiveRedact(values, in)
		if collapse(out.Bytes()) != collapse(want) {
			t.Fatalf("values %q, max line %d, input %q:\nwant %q\nhave %q", values, maxLine, in, want, out.Bytes())
		}
	})
}
