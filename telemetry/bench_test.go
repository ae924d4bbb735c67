package telemetry

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
)

// benchBlock is 64 KiB-ish of 100-byte log lines, the unit the benchmark writer writes into the pipe.
func benchBlock(secret string) []byte {
	var b []byte
	for i := 0; len(b) < 64<<10-100; i++ {
		line := fmt.Sprintf("2026-11-20T10:15:06.125Z INFO request handled path=/api/v1/items/%06d status=200 id=%d", i, i*7919)
		if secret != "" && i == 300 {
			line = "2026-11-20T10:15:06.125Z WARN connecting with password=" + secret
		}
		for len(line) < 99 {
			line += "."
		}
		b = append(b, line[:99]...)
		b = append(b, '\n')
	}
	return b
}

func benchSecrets(n int) []string {
	rng := rand.New(rand.NewPCG(7, 9))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	out := make([]string, n)
	for i := range out {
		b := make([]byte, 16+rng.IntN(24))
		for k := range b {
			b[k] = alphabet[rng.IntN(len(alphabet))]
		}
		out[i] = string(b)
	}
	return out
}

// readerOnly hides os.File's WriterTo/ReaderFrom so that io.Copy takes its plain read/write loop.
type readerOnly struct{ io.Reader }

// BenchmarkStream measures throughput of 100-byte lines from a real pipe into /dev/null: "direct" is a plain
// io.Copy (which splices on Linux: the kernel moves the pages, the floor of any user-space copy), "copy" is
// io.Copy's read/write loop with a 64 KiB buffer (what any line-aware reader must at least do), the others go
// through Streamer. Compare MB/s.
func BenchmarkStream(b *testing.B) {
	secrets := benchSecrets(20)
	cases := []struct {
		name   string
		cfg    StreamConfig
		values []string
		block  []byte
		copy   func(dst *os.File, r *os.File) error
	}{
		{name: "direct", block: benchBlock(""), copy: func(dst, r *os.File) error { _, err := io.Copy(dst, r); return err }},
		{name: "copy", block: benchBlock(""), copy: func(dst, r *os.File) error {
			_, err := io.CopyBuffer(dst, readerOnly{r}, make([]byte, 64<<10))
			return err
		}},
		{name: "raw", block: benchBlock("")},
		{name: "raw-redact-on-no-values", cfg: StreamConfig{Redact: true}, block: benchBlock("")},
		{name: "prefix", cfg: StreamConfig{Prefix: true}, block: benchBlock("")},
		{name: "json", cfg: StreamConfig{Format: "json"}, block: benchBlock("")},
		{name: "redact20", cfg: StreamConfig{Redact: true}, values: secrets, block: benchBlock("")},
		{name: "redact20-hit-per-64KiB", cfg: StreamConfig{Redact: true}, values: secrets, block: benchBlock(secrets[3])},
		{name: "json-redact20", cfg: StreamConfig{Format: "json", Redact: true}, values: secrets, block: benchBlock("")},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer devnull.Close()
			r, w, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			copyFn := bc.copy
			if copyFn == nil {
				cfg := bc.cfg
				cfg.Stdout, cfg.Stderr = devnull, devnull
				s, err := NewStreamer(cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				s.SetRedactions(bc.values)
				copyFn = func(_, r *os.File) error { return s.Stream("main", "stdout", r) }
			}
			done := make(chan error, 1)
			b.SetBytes(int64(len(bc.block)))
			b.ReportAllocs()
			b.ResetTimer()
			go func() { done <- copyFn(devnull, r) }()
			for range b.N {
				if _, err := w.Write(bc.block); err != nil {
					b.Fatal(err)
				}
			}
			w.Close()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
