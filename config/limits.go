package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Limits on what a configuration file may hold, checked before HCL parses it: HCL's parsers and its
// expression evaluation recurse once per level of nesting, so a small file of 60,000 '[' used to end berth
// with a stack overflow after growing to 1 GB. A real configuration is a few KiB and nests less than ten
// levels (block, nested block, list, quote, ${, function call).
const (
	// MaxFileSize is the largest configuration file in bytes (512 KiB).
	MaxFileSize = 512 << 10
	// MaxDepth is the deepest nesting of a configuration, counted by nestingDepth.
	MaxDepth = 64
	// MaxBlocks is the most blocks of each labelled type (job, secret, service, peers) in one file.
	MaxBlocks = 10_000
)

// readLimited reads the file at path, refusing one larger than MaxFileSize without reading it whole.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, errTooLarge(fi.Size())
	}
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(src) > MaxFileSize {
		return nil, errTooLarge(-1)
	}
	return src, nil
}

func errTooLarge(size int64) error {
	if size < 0 {
		return fmt.Errorf("file is larger than %d bytes (512 KiB), the limit of a config file", MaxFileSize)
	}
	return fmt.Errorf("file is %d bytes; a config file holds at most %d bytes (512 KiB)", size, MaxFileSize)
}

func errTooDeep() string {
	return fmt.Sprintf("nested more than %d levels deep (each bracket, quote, template directive and operator "+
		"counts one level)", MaxDepth)
}

// nestingDepth returns the offset of the first token nested deeper than MaxDepth, or -1. The depth of a token
// bounds the depth of HCL's syntax tree there: one level for every open bracket, brace, parenthesis, quote,
// heredoc and template sequence (${ and %{) around it, for every %{if} and %{for} directive it is inside, and
// for every operator (unary, binary, ?, . and [index]) before it in the enclosing expressions, since a chain
// such as !!!!x or 1+1+1 nests as deeply as brackets do. A comma, and a newline in a body or an object, end an
// expression and so its operators. A closer that does not match the innermost opener is ignored, which only
// overcounts in a file that is a syntax error anyway.
func nestingDepth(toks hclsyntax.Tokens) int {
	type level struct {
		open  hclsyntax.TokenType
		ops   int  // operators of the expression this level interrupted
		index bool // [key] after a value: once closed, it counts as one more operator of the chain
	}
	var (
		stack      []level
		ops        int // operators of the current expression
		outerOps   int // sum of stack[i].ops
		directives int // open %{if} and %{for}
		prev       hclsyntax.TokenType
	)
	for i, tok := range toks {
		switch tok.Type {
		case hclsyntax.TokenOBrack, hclsyntax.TokenOBrace, hclsyntax.TokenOParen, hclsyntax.TokenOQuote,
			hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			l := level{open: tok.Type, ops: ops}
			if tok.Type == hclsyntax.TokenOBrack {
				switch prev {
				case hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCBrace, hclsyntax.TokenCQuote,
					hclsyntax.TokenCHeredoc, hclsyntax.TokenIdent, hclsyntax.TokenNumberLit:
					l.index = true // x[0][0] nests like an operator chain
				}
			}
			stack = append(stack, l)
			outerOps += ops
			ops = 0
		case hclsyntax.TokenCBrack, hclsyntax.TokenCBrace, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
			hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			if n := len(stack); n > 0 && closes(tok.Type, stack[n-1].open) {
				ops = stack[n-1].ops
				outerOps -= ops
				if stack[n-1].index {
					ops++
				}
				stack = stack[:n-1]
			}
		case hclsyntax.TokenComma:
			ops = 0
		case hclsyntax.TokenNewline:
			// Inside brackets, parentheses and templates HCL skips newlines; elsewhere one ends an argument.
			if n := len(stack); n == 0 || stack[n-1].open == hclsyntax.TokenOBrace {
				ops = 0
			}
		case hclsyntax.TokenPlus, hclsyntax.TokenMinus, hclsyntax.TokenStar, hclsyntax.TokenSlash,
			hclsyntax.TokenPercent, hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan,
			hclsyntax.TokenLessThanEq, hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq,
			hclsyntax.TokenAnd, hclsyntax.TokenOr, hclsyntax.TokenBang, hclsyntax.TokenQuestion,
			hclsyntax.TokenDot, hclsyntax.TokenEllipsis:
			ops++
		case hclsyntax.TokenIdent:
			if i > 0 && toks[i-1].Type == hclsyntax.TokenTemplateControl {
				switch string(tok.Bytes) {
				case "if", "for":
					directives++
				case "endif", "endfor":
					directives = max(directives-1, 0)
				}
			}
		}
		if len(stack)+outerOps+ops+directives > MaxDepth {
			return tok.Range.Start.Byte
		}
		prev = tok.Type
	}
	return -1
}

// closes reports whether closer ends a level opened by open.
func closes(closer, open hclsyntax.TokenType) bool {
	switch closer {
	case hclsyntax.TokenCBrack:
		return open == hclsyntax.TokenOBrack
	case hclsyntax.TokenCBrace:
		return open == hclsyntax.TokenOBrace
	case hclsyntax.TokenCParen:
		return open == hclsyntax.TokenOParen
	case hclsyntax.TokenCQuote:
		return open == hclsyntax.TokenOQuote
	case hclsyntax.TokenCHeredoc:
		return open == hclsyntax.TokenOHeredoc
	case hclsyntax.TokenTemplateSeqEnd:
		return open == hclsyntax.TokenTemplateInterp || open == hclsyntax.TokenTemplateControl
	}
	return false
}

// jsonNestingDepth is nestingDepth for HCL's JSON syntax: the offset of the first '[' or '{' nested deeper
// than MaxDepth, or of the first string whose template (HCL parses JSON strings as templates: "${...}") is
// nested deeper than MaxDepth; -1 when neither.
func jsonNestingDepth(src []byte) int {
	depth := 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '[', '{':
			if depth++; depth > MaxDepth {
				return i
			}
		case ']', '}':
			depth = max(depth-1, 0)
		case '"':
			end := i + 1
			for end < len(src) && src[end] != '"' {
				if src[end] == '\\' {
					end++
				}
				end++
			}
			end = min(end, len(src)-1)
			if lit := src[i : end+1]; bytes.IndexByte(lit, '{') >= 0 || bytes.Contains(lit, []byte(`\u`)) {
				var s string
				if json.Unmarshal(lit, &s) == nil && (strings.Contains(s, "${") || strings.Contains(s, "%{")) {
					toks, _ := hclsyntax.LexTemplate([]byte(s), "", hcl.InitialPos)
					if nestingDepth(toks) >= 0 {
						return i
					}
				}
			}
			i = end
		}
	}
	return -1
}
