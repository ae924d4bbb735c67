package field

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one problem with a config block.
type Error struct {
	// Block names the block as messages do (`secret "db"`, `service "web"`).
	Block string
	// Path is the key as the config file spells it, inside the block: "file", "env.DB_USER" (an entry of a
	// map), "check.0.http" (a key of the first check block); "" is the block itself.
	Path string
	// Key is set when the problem is that the key is there at all ("goes only with"), so a position points at
	// its name; otherwise it points at the value.
	Key bool
	// Msg is the message without position, as `berth validate` prints it.
	Msg string
	// Named is set when Msg names the block itself.
	Named bool
}

// Error is Msg, preceded by Block unless Msg names it.
func (e *Error) Error() string {
	if e.Named || e.Block == "" {
		return e.Msg
	}
	return e.Block + ": " + e.Msg
}

// Block collects the problems of one block.
type Block struct {
	// Name is Error.Block of what Valuef and Keyf add.
	Name string
	errs []error
}

// Valuef adds a problem with the value at path.
func (b *Block) Valuef(path, format string, args ...any) {
	b.errs = append(b.errs, &Error{Block: b.Name, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Keyf adds a problem with the key at path being set.
func (b *Block) Keyf(path, format string, args ...any) {
	b.errs = append(b.errs, &Error{Block: b.Name, Path: path, Key: true, Msg: fmt.Sprintf(format, args...)})
}

// Blockf adds a problem with the whole block; the message names the block itself.
func (b *Block) Blockf(format string, args ...any) {
	b.errs = append(b.errs, &Error{Block: b.Name, Named: true, Msg: fmt.Sprintf(format, args...)})
}

// Namedf adds a problem with the key at path being set, whose message names the block itself.
func (b *Block) Namedf(path, format string, args ...any) {
	b.errs = append(b.errs, &Error{Block: b.Name, Path: path, Key: true, Named: true, Msg: fmt.Sprintf(format, args...)})
}

// Add adds problems as they are.
func (b *Block) Add(e ...*Error) {
	for _, x := range e {
		b.errs = append(b.errs, x)
	}
}

// Err joins the problems into one error of one line ("; " between them), which errors.As and All see
// through; nil when there are none.
func (b *Block) Err() error {
	switch len(b.errs) {
	case 0:
		return nil
	case 1:
		return b.errs[0]
	}
	return joined(b.errs)
}

// joined is errors.Join on one line: messages of berth's own stay one line (README "Exit codes").
type joined []error

func (j joined) Error() string {
	var s strings.Builder
	for i, e := range j {
		if i > 0 {
			s.WriteString("; ")
		}
		s.WriteString(e.Error())
	}
	return s.String()
}

func (j joined) Unwrap() []error { return j }

// All returns every Error inside err (as errors.Join and %w build them), in order. Errors that are not
// *Error are left out.
func All(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		var fe *Error
		switch x := err.(type) {
		case nil:
		case *Error:
			out = append(out, x)
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				walk(e)
			}
		default:
			if errors.As(err, &fe) {
				out = append(out, fe)
			}
		}
	}
	walk(err)
	return out
}
