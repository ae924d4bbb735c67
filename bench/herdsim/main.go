package main

import (
	"container/heap"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
)

type policy struct {
	name      string
	base, cap float64 // seconds: the first delay, doubling up to cap
	full      bool    // full jitter: wait in [0, d); else [d/2, 3d/2)
}

type task struct {
	at, d float64
}

type queue []task

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q queue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)        { *q = append(*q, x.(task)) }
func (q *queue) Pop() any          { o := *q; x := o[len(o)-1]; *q = o[:len(o)-1]; return x }

// herd runs one herd of n tasks against rate; it returns the p99 start time and the requests sent.
func herd(r *rand.Rand, n int, rate float64, p policy) (p99 float64, requests int) {
	q := make(queue, n)
	for i := range q {
		q[i] = task{at: r.Float64() * 0.2, d: p.base}
	}
	heap.Init(&q)
	tokens, last := rate, 0.0
	done := make([]float64, 0, n)
	for q.Len() > 0 {
		t := heap.Pop(&q).(task)
		requests++
		tokens = min(rate, tokens+(t.at-last)*rate)
		last = t.at
		if tokens >= 1 {
			tokens--
			done = append(done, t.at)
			continue
		}
		if p.full {
			t.at += r.Float64() * t.d
		} else {
			t.at += r.Float64()*t.d + t.d/2
		}
		t.d = min(2*t.d, p.cap)
		heap.Push(&q, t)
	}
	slices.Sort(done)
	return done[n*99/100-1], requests
}

// ideal is the p99 start time if the quota were used perfectly: the bucket at once, then one per 1/rate.
func ideal(n int, rate float64) float64 { return float64(n*99/100-int(rate)) / rate }

func main() {
	rate := flag.Float64("rate", 40, "quota, requests per second (the bucket holds one second's worth)")
	trials := flag.Int("trials", 20, "herds per cell (averaged)")
	flag.Parse()
	policies := []policy{
		{"100ms doubling to 5s, ±50% (berth before: every transient error)", 0.1, 5, false},
		{"**1s doubling to 5s, ±50% (berth: throttling)**", 1, 5, false},
		{"1s doubling to 10s, ±50%", 1, 10, false},
		{"100ms doubling to 5s, full jitter", 0.1, 5, true},
		{"1s doubling to 10s, full jitter", 1, 10, true},
		{"1s doubling to 20s, full jitter (aws-sdk-go-v2's standard back-off)", 1, 20, true},
	}
	sizes := []int{200, 500, 1000, 2000}
	fmt.Printf("Simulated herds (bench/herdsim, %d herds a cell): p99 start delay ÷ the ideal, and requests per task, against a %.0f TPS bucket.\n\n", *trials, *rate)
	fmt.Print("| back-off for throttled requests |")
	for _, n := range sizes {
		fmt.Printf(" %d tasks |", n)
	}
	fmt.Print("\n|---|")
	for range sizes {
		fmt.Print("---|")
	}
	fmt.Println()
	r := rand.New(rand.NewPCG(15, 40)) // fixed: the table is the same every run
	for _, p := range policies {
		fmt.Printf("| %s |", p.name)
		for _, n := range sizes {
			var p99, reqs float64
			for range *trials {
				a, b := herd(r, n, *rate, p)
				p99 += a
				reqs += float64(b)
			}
			k := float64(*trials)
			fmt.Printf(" %.2f× · %.1f |", p99/k/ideal(n, *rate), reqs/k/float64(n))
		}
		fmt.Println()
	}
	fmt.Println()
}
