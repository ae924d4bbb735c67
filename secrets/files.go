package secrets

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// stagedFile is a secret file written to a temporary name beside its destination, waiting for commit (a
// rename, atomic within the directory) once every secret has resolved.
type stagedFile struct {
	path, tmp, label string
}

// stageFile writes data to a temporary file in path's directory (created 0755 if missing) with mode (0 means
// 0400) and, when uid or gid is >= 0 and differs from the file's owner, chowns it.
func stageFile(path string, data []byte, mode os.FileMode, uid, gid int) (stagedFile, error) {
	if mode == 0 {
		mode = 0o400
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return stagedFile{}, fmt.Errorf("file %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".berth-*")
	if err != nil {
		return stagedFile{}, fmt.Errorf("file %s: %w", path, err)
	}
	sf := stagedFile{path: path, tmp: f.Name()}
	fail := func(err error) (stagedFile, error) {
		_ = f.Close()
		sf.discard()
		return stagedFile{}, fmt.Errorf("file %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if uid >= 0 || gid >= 0 {
		fi, err := f.Stat()
		if err != nil {
			return fail(err)
		}
		// Skip a no-op chown, so a non-root berth writing its own files never needs CAP_CHOWN.
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || (uid >= 0 && uint32(uid) != st.Uid) || (gid >= 0 && uint32(gid) != st.Gid) {
			if err := f.Chown(uid, gid); err != nil {
				return fail(err)
			}
		}
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		sf.discard()
		return stagedFile{}, fmt.Errorf("file %s: %w", path, err)
	}
	return sf, nil
}

// check reports a destination that a rename cannot replace (a directory), so that a batch of files can fail
// before the first of them is committed.
func (s *stagedFile) check() error {
	if fi, err := os.Lstat(s.path); err == nil && fi.IsDir() {
		return fmt.Errorf("file %s: is a directory", s.path)
	}
	return nil
}

// commit renames the temporary file over the destination and syncs the directory.
func (s *stagedFile) commit() error {
	if err := os.Rename(s.tmp, s.path); err != nil {
		return fmt.Errorf("file %s: %w", s.path, err)
	}
	s.tmp = ""
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// discard removes an uncommitted temporary file.
func (s *stagedFile) discard() {
	if s.tmp != "" {
		_ = os.Remove(s.tmp)
		s.tmp = ""
	}
}

// WriteFileAtomic writes data to path through a temporary file and a rename (used by `berth secrets`).
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	sf, err := stageFile(path, data, mode, -1, -1)
	if err != nil {
		return err
	}
	return sf.commit()
}
