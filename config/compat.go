package config

import "github.com/hashicorp/hcl/v2/hclsyntax"

// expandSingleLineBlocks rewrites single-line blocks that separate arguments with commas, such as the README's
//
//	check { http = "http://127.0.0.1:8080/health", interval = "10s", timeout = "2s" }
//
// into the multi-line form HCL requires (native HCL allows one argument in a single-line block and rejects
// this with "Invalid single-argument block definition"). Only text HCL would reject is changed: a brace
// opens a block, not an object, exactly when the token before it is a block type or label. It returns the
// new text and the offsets (in the new text) of the bytes it inserted, so that positions in messages still
// point into the original source. toks are the tokens of src (hclsyntax.LexConfig).
func expandSingleLineBlocks(src []byte, toks hclsyntax.Tokens) ([]byte, []int) {
	type edit struct {
		off    int  // offset in src
		insert bool // insert '\n' before off; otherwise replace the byte at off with '\n'
	}
	var edits []edit
	for i := 1; i < len(toks); i++ {
		if toks[i].Type != hclsyntax.TokenOBrace {
			continue
		}
		if prev := toks[i-1].Type; prev != hclsyntax.TokenIdent && prev != hclsyntax.TokenCQuote {
			continue
		}
		depth, end := 0, -1
		var commas []int
	scan:
		for j := i + 1; j < len(toks); j++ {
			switch toks[j].Type {
			case hclsyntax.TokenNewline, hclsyntax.TokenEOF:
				break scan
			case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
				hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
				depth++
			case hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenTemplateSeqEnd:
				depth--
			case hclsyntax.TokenCBrace:
				if depth == 0 {
					end = j
					break scan
				}
				depth--
			case hclsyntax.TokenComma:
				if depth == 0 {
					commas = append(commas, toks[j].Range.Start.Byte)
				}
			}
		}
		if end < 0 || len(commas) == 0 {
			continue
		}
		edits = append(edits, edit{off: toks[i].Range.End.Byte, insert: true})
		for _, c := range commas {
			edits = append(edits, edit{off: c})
		}
		edits = append(edits, edit{off: toks[end].Range.Start.Byte, insert: true})
		i = end
	}
	if len(edits) == 0 {
		return src, nil
	}
	out := make([]byte, 0, len(src)+len(edits))
	var inserted []int
	last := 0
	for _, e := range edits {
		out = append(out, src[last:e.off]...)
		last = e.off
		if e.insert {
			inserted = append(inserted, len(out))
			out = append(out, '\n')
		} else {
			out = append(out, '\n')
			last++
		}
	}
	out = append(out, src[last:]...)
	return out, inserted
}
