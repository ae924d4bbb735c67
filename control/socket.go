package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// socket is a listening unix socket and the identity of the file berth created for it, so that shutdown removes
// that file and never a socket another berth created at the same path in the meantime.
type socket struct {
	path string
	ln   *net.UnixListener
	file os.FileInfo

	closeOnce sync.Once
	closeErr  error
}

// listenSocket creates the control socket at path with the given permission.
//
// The socket is bound inside a fresh 0700 directory next to path, chmod-ed, then renamed into place: binding at
// path directly would create the file with the process umask and leave a window in which anyone could connect
// before the chmod (changing the umask instead is process-wide and would race with the supervisor starting
// children). If the temporary path would not fit in a socket address, berth binds at path directly and chmods.
func listenSocket(path string, mode os.FileMode) (*socket, error) {
	if err := clearStale(path); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	tmpDir, err := os.MkdirTemp(dir, ".berth-ctl-")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("control socket %s: directory %s does not exist: %w", path, dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer os.RemoveAll(tmpDir)
	bindPath := filepath.Join(tmpDir, "s")
	if len(bindPath) > maxSocketPath {
		bindPath = path
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bindPath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// Removal is ours to do (after a rename the listener's own path is gone, and we check identity first).
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*socket, error) {
		_ = ln.Close()
		_ = os.Remove(bindPath)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(bindPath, mode); err != nil {
		return fail(err)
	}
	if bindPath != path {
		if err := os.Rename(bindPath, path); err != nil {
			return fail(err)
		}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return &socket{path: path, ln: ln, file: fi}, nil
}

// clearStale removes a socket file left by a berth that died without cleaning up. A socket that still answers
// belongs to a live process and is an *InUseError; a path that is not a socket is never removed.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: the path exists and is not a socket (%v); refusing to replace it", path, fi.Mode().Type())
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = conn.Close()
		return &InUseError{Socket: path}
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		// EAGAIN (a live listener with a full backlog), EACCES, a timeout: not provably stale.
		return fmt.Errorf("control socket %s: cannot tell whether the existing socket is stale: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket %s: removing stale socket: %w", path, err)
	}
	return nil
}

// close stops listening and removes the socket file if it is still the one this socket created. It is safe to
// call more than once.
func (s *socket) close() error {
	s.closeOnce.Do(func() {
		err := s.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil // http.Server.Shutdown closed it already
		}
		if fi, statErr := os.Lstat(s.path); statErr == nil && os.SameFile(fi, s.file) {
			if rmErr := os.Remove(s.path); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
				err = errors.Join(err, rmErr)
			}
		}
		if err != nil {
			s.closeErr = fmt.Errorf("control socket %s: %w", s.path, err)
		}
	})
	return s.closeErr
}
