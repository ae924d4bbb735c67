package telemetry

import (
	"bytes"
	"slices"
	"strings"
)

// byteFrequency lists bytes from most to least frequent in typical log output (English text, JSON, URLs,
// numbers). Bytes not listed are rarer still. A pattern is searched by its rarest byte, so that the
// vectorised bytes.IndexByte stops as seldom as possible: the "rare byte" prefilter of Rust's memchr::memmem.
const byteFrequency = " etaoinsrlcdhumpfg\"0.1:2=,-yb/wv3_k45S6E7T98ACIRNOLDPMxF{}[]jqzUBHGWV()'KYJ#\t|<>;+@*&%$!?~^`\\XQZ"

// pattern is one value to redact, found through its anchor byte at offset at.
type pattern struct {
	val []byte
	at  int
}

// anchorGroup holds the patterns sharing one anchor byte: one IndexByte pass serves all of them.
type anchorGroup struct {
	b    byte
	pats []pattern
}

// interval is a half-open byte range of a block that matched a value.
type interval struct{ lo, hi int }

// matcher finds redaction values in blocks of complete lines. It is immutable once built.
type matcher struct {
	groups []anchorGroup
}

// newMatcher builds a matcher for values, or returns nil when nothing is long enough to redact. Values are
// split at newlines (output is matched line by line, so a multi-line value is redacted line by line); pieces
// shorter than MinRedactLen are ignored; duplicates are dropped.
func newMatcher(values []string) *matcher {
	var rank [256]int // higher is more frequent
	for i := 0; i < len(byteFrequency); i++ {
		rank[byteFrequency[i]] = len(byteFrequency) - i
	}
	seen := make(map[string]bool)
	byAnchor := make(map[byte]int) // anchor byte → index in groups
	m := &matcher{}
	for _, v := range values {
		for _, piece := range strings.Split(v, "\n") {
			piece = strings.TrimSuffix(piece, "\r")
			if len(piece) < MinRedactLen || seen[piece] {
				continue
			}
			seen[piece] = true
			at := 0
			for i := 1; i < len(piece); i++ {
				if rank[piece[i]] < rank[piece[at]] {
					at = i
				}
			}
			b := piece[at]
			gi, ok := byAnchor[b]
			if !ok {
				gi = len(m.groups)
				byAnchor[b] = gi
				m.groups = append(m.groups, anchorGroup{b: b})
			}
			m.groups[gi].pats = append(m.groups[gi].pats, pattern{val: []byte(piece), at: at})
		}
	}
	if len(m.groups) == 0 {
		return nil
	}
	return m
}

// redact returns block with every occurrence of a value replaced by redactedMark. When nothing matches (the
// common case) it returns block itself without copying; otherwise the result lives in st.red. Overlapping
// matches of different values merge into one mark, so no byte of any value survives.
func (m *matcher) redact(block []byte, st *streamState) []byte {
	iv := st.iv[:0]
	for gi := range m.groups {
		g := &m.groups[gi]
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
	st.iv = iv
	if len(iv) == 0 {
		return block
	}
	slices.SortFunc(iv, func(x, y interval) int { return x.lo - y.lo })
	out := st.red[:0]
	last := 0 // end of the block already copied or covered
	for k := 0; k < len(iv); {
		lo, hi := iv[k].lo, iv[k].hi
		for k++; k < len(iv) && iv[k].lo < hi; k++ {
			hi = max(hi, iv[k].hi)
		}
		out = append(out, block[last:lo]...)
		out = append(out, redactedMark...)
		last = hi
	}
	out = append(out, block[last:]...)
	st.red = out
	return out
}
