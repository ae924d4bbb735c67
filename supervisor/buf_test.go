package supervisor

import "bytes"

func newBuf() *bytes.Buffer { return &bytes.Buffer{} }
