package secrets

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkResolve50Refs5Secrets resolves 50 env references to 5 Secrets Manager secrets against moto_server,
// with the default pool (8 workers) and with Concurrency=1 (sequential fetches), directly and through a
// proxy adding 20ms of latency per request. The parallel/sequential ratio is what bench/RESULTS.md reports.
func BenchmarkResolve50Refs5Secrets(b *testing.B) {
	a := startAWS(b)
	for i := range 5 {
		a.secret(b, fmt.Sprintf("bench%d", i), fmt.Sprintf(`{"a":"bench%d-a","b":"bench%d-b"}`, i, i))
	}
	var env []string
	for i := range 50 {
		env = append(env, fmt.Sprintf("V%02d=secretsmanager:bench%d:%s", i, i%5, []string{"a", "b"}[i%2]))
	}
	// moto on the same host answers in well under a millisecond of network time and is CPU-bound (Python), so
	// the pool barely helps there; a proxy adding 20ms per request stands in for a real AWS round trip.
	slow := startRecorder(b, a.moto.URL)
	slow.setInject(func(string, int) (int, string) { time.Sleep(20 * time.Millisecond); return 0, "" })
	for _, bc := range []struct {
		name        string
		concurrency int
		endpoint    string
	}{
		{"moto/parallel", DefaultConcurrency, a.moto.URL}, {"moto/sequential", 1, a.moto.URL},
		{"rtt20ms/parallel", DefaultConcurrency, slow.URL}, {"rtt20ms/sequential", 1, slow.URL},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.Setenv("AWS_ENDPOINT_URL", bc.endpoint)
			r := mustNew(b, Config{Concurrency: bc.concurrency}, nil)
			if _, err := r.Resolve(b.Context(), Env{Shared: env}); err != nil { // creates the AWS clients outside the timing
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.Resolve(b.Context(), Env{Shared: env}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
