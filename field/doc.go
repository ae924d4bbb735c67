// Package field is how the packages that own a config block (discovery, secrets, supervisor) say which key
// of the block a problem is about, so that the config package can put the file's line and column in front of
// it without checking the block a second time.
//
// A block's Validate returns Errors (joined, on one line); config finds each with errors.As, looks up
// Path in the positions it recorded while decoding, and prints "file:line:col: Msg". Any other caller sees
// Error(), which names the block.
package field
