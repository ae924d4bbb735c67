package telemetry

import (
	"bytes"
	"slices"
	"strings"
)

// byteFrequency lists bytes from most to least frequent in typical log output (English text, JSON, URLs,
// numbers). It is only the prior: the anchors of a stream are chosen from the bytes it actually writes.
const byteFrequency = " etaoinsrlcdhumpfg\"0.1:2=,-yb/wv3_k45S6E7T98ACIRNOLDPMxF{}[]jqzUBHGWV()'KYJ#\t|<>;+@*&%$!?~^`\\XQZ"

const (
	// replanEvery is how many blocks a stream redacts before it re-chooses its anchors from fresh data.
	replanEvery = 1024
	// stopCost is how many occurrences of an anchor byte in 64 KiB cost as much as one more IndexByte pass
	// over those 64 KiB (a pass runs at tens of GB/s; each stop costs a few ns plus a compare per pattern).
	stopCost = 160
)

// pattern is one value to redact.
type pattern struct {
	val []byte
	has [4]uint64 // the set of bytes in val
}

// matcher holds the values to redact. It is immutable once built and shared by all streams; each stream
// keeps its own plan of how to search for them.
type matcher struct {
	pats   []pattern
	maxLen int // length of the longest value: a stream cutting a long line keeps maxLen-1 bytes
}

// newMatcher builds a matcher for values, or returns nil when nothing is long enough to redact. Values are
// split at newlines (output is matched line by line, so a multi-line value is redacted line by line); pieces
// shorter than MinRedactLen are ignored; duplicates are dropped.
func newMatcher(values []string) *matcher {
	seen := make(map[string]bool)
	m := &matcher{}
	for _, v := range values {
		for _, piece := range strings.Split(v, "\n") {
			piece = strings.TrimSuffix(piece, "\r")
			if len(piece) < MinRedactLen || seen[piece] {
				continue
			}
			seen[piece] = true
			p := pattern{val: []byte(piece)}
			for i := 0; i < len(piece); i++ {
				p.has[piece[i]>>6] |= 1 << (piece[i] & 63)
			}
			m.pats = append(m.pats, p)
			m.maxLen = max(m.maxLen, len(piece))
		}
	}
	if len(m.pats) == 0 {
		return nil
	}
	return m
}

// anchored is a pattern found through its anchor byte at offset at.
type anchored struct {
	val []byte
	at  int
}

// anchorGroup holds the patterns sharing one anchor byte: one bytes.IndexByte pass serves all of them.
type anchorGroup struct {
	b    byte
	pats []anchored
}

// plan is how one stream searches for a matcher's values: the "rare byte" prefilter of Rust's
// memchr::memmem, extended to many values. Every value gets an anchor byte; a vectorised IndexByte pass per
// distinct anchor finds candidates, which are then compared. Passes are the main cost, so the anchors are a
// greedy weighted set cover: few bytes that together occur in every value and seldom in this stream's output
// (a static table is not enough: the 'Z' of every RFC 3339 timestamp is "rare" English).
type plan struct {
	m      *matcher
	groups []anchorGroup
}

// sampler keeps the byte histogram of a stream's recent output, from which plans are made. It samples the
// first sampleSize bytes (re-planning at 1 KiB, 4 KiB, 16 KiB and 64 KiB), and again every replanEvery
// blocks, so the anchors follow what the process writes.
type sampler struct {
	hist    [256]int
	sampled int // bytes counted in hist
	next    int // re-plan when sampled reaches next
	blocks  int // blocks redacted since the last full sample
}

const sampleSize = 64 << 10

// newPlan chooses anchors for m from the byte frequencies in hist (over sampled bytes).
func newPlan(m *matcher, hist *[256]int, sampled int) *plan {
	var cost [256]float64
	for b := range cost {
		prior := 0
		if i := strings.IndexByte(byteFrequency, byte(b)); i >= 0 {
			prior = (len(byteFrequency) - i) / 8 // at most a few stops: a tie-breaker among unseen bytes
		}
		seen := 0.0
		if sampled > 0 {
			seen = float64(hist[b]) * float64(sampleSize) / float64(sampled)
		}
		cost[b] = 1 + (seen+float64(prior))/stopCost
	}
	p := &plan{m: m}
	covered := make([]bool, len(m.pats))
	left := len(m.pats)
	for left > 0 {
		best, bestScore := -1, 0.0
		for b := range 256 {
			n := 0
			for i := range m.pats {
				if !covered[i] && m.pats[i].has[b>>6]&(1<<(b&63)) != 0 {
					n++
				}
			}
			if score := float64(n) / cost[b]; n > 0 && score > bestScore {
				best, bestScore = b, score
			}
		}
		g := anchorGroup{b: byte(best)}
		for i := range m.pats {
			if !covered[i] && m.pats[i].has[best>>6]&(1<<(best&63)) != 0 {
				covered[i] = true
				left--
				val := m.pats[i].val
				g.pats = append(g.pats, anchored{val: val, at: bytes.IndexByte(val, byte(best))})
			}
		}
		p.groups = append(p.groups, g)
	}
	return p
}

// observe feeds block into the sampler and re-makes st.plan when it is missing, stale or due.
func (st *streamState) observe(m *matcher, block []byte) {
	sm := &st.sample
	replan := st.plan == nil || st.plan.m != m
	if sm.sampled < sampleSize {
		n := min(len(block), sampleSize-sm.sampled)
		for _, b := range block[:n] {
			sm.hist[b]++
		}
		sm.sampled += n
		if sm.sampled >= sm.next {
			replan = true
			for sm.next <= sm.sampled {
				sm.next *= 4
			}
		}
	} else if sm.blocks++; sm.blocks >= replanEvery {
		// Start a fresh sample; keep the current plan until it is complete.
		*sm = sampler{next: sampleSize}
	}
	if replan {
		st.plan = newPlan(m, &sm.hist, sm.sampled)
	}
}

// interval is a half-open byte range of a block that matched a value.
type interval struct{ lo, hi int }

// redact returns block with every occurrence of a value of m replaced by redactedMark, using (and when
// needed re-making) the stream's plan. When nothing matches (the common case) it returns block itself
// without copying; otherwise the result lives in st.red. Overlapping matches merge into one mark, so no byte
// of any value survives.
func (st *streamState) redact(m *matcher, block []byte) []byte {
	out, _ := st.redactHead(m, block, len(block))
	return out
}

// redactHead is redact for block[:end] with the matches found in all of block (m may be nil): a match that
// crosses end is redacted up to end, and covered is how many bytes of it lie beyond end. The first
// st.covered bytes of block are the rest of a value redacted before (see streamState.covered): they are
// dropped, and so is the mark of a match that overlaps them, which was written already.
func (st *streamState) redactHead(m *matcher, block []byte, end int) (out []byte, covered int) {
	iv := st.iv[:0]
	if st.covered > 0 {
		iv = append(iv, interval{0, min(st.covered, len(block))})
	}
	if m != nil {
		st.observe(m, block)
		for gi := range st.plan.groups {
			g := &st.plan.groups[gi]
			for pos := 0; pos < len(block); {
				i := bytes.IndexByte(block[pos:], g.b)
				if i < 0 {
					break
				}
				a := pos + i
				pos = a + 1
				for _, p := range g.pats {
					lo := a - p.at
					hi := lo + len(p.val)
					if lo >= 0 && hi <= len(block) && bytes.Equal(block[lo:hi], p.val) {
						iv = append(iv, interval{lo, hi})
					}
				}
			}
		}
	}
	st.iv = iv
	if len(iv) == 0 {
		return block[:end], 0
	}
	slices.SortFunc(iv, func(x, y interval) int { return x.lo - y.lo })
	out = st.red[:0]
	last := 0 // end of the block already copied or covered
	for k := 0; k < len(iv) && iv[k].lo < end; {
		lo, hi := iv[k].lo, iv[k].hi
		for k++; k < len(iv) && iv[k].lo < hi; k++ {
			hi = max(hi, iv[k].hi)
		}
		out = append(out, block[last:lo]...)
		if lo > 0 || st.covered == 0 {
			out = append(out, redactedMark...)
		}
		if hi > end {
			covered = hi - end
			hi = end
		}
		last = hi
	}
	out = append(out, block[last:end]...)
	st.red = out
	return out, covered
}
