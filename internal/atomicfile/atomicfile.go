// Package atomicfile replaces a file's content so that a crash leaves
// either the old content or the new, never a mix: the gateway's state
// files (the presence mirror's table, learned dictionaries, the datagram
// handshake stamps) and its key files.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes data to a temporary file beside path with permissions
// perm, syncs it, renames it over path and syncs the directory, so that
// the rename itself survives a crash. On failure the temporary file is
// removed and the error names path.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		// Best effort: not every file system syncs directories.
		_ = d.Sync()
		d.Close()
	}
	return nil
}
