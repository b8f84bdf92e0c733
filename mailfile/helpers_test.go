package mailfile

import (
	"os"
	"path/filepath"
	"testing"
)

// corpusDir returns the shared corpus of real messages, or skips the test
// when it is not there.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir := corpusDirOrEmpty(t)
	if dir == "" {
		t.Skip("corpus not available")
	}
	return dir
}

// corpusDirOrEmpty returns the shared corpus, or "" when it is not there.
func corpusDirOrEmpty(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	corpus := filepath.Join(dir, "..", "shared", "corpus", "messages")
	if _, err := os.Stat(corpus); err != nil {
		return ""
	}
	return corpus
}

// writeFile writes data to name below dir, creating directories.
func writeFile(t testing.TB, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// withEOL returns raw as an mbox gives it back: with a line ending
// appended when raw lacks one, in the style of raw's first line.
func withEOL(raw []byte) []byte {
	if len(raw) > 0 && raw[len(raw)-1] == '\n' {
		return raw
	}
	eol := "\n"
	for i, c := range raw {
		if c == '\n' {
			if i > 0 && raw[i-1] == '\r' {
				eol = "\r\n"
			}
			break
		}
	}
	return append(append([]byte(nil), raw...), eol...)
}
