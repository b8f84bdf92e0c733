package mailparse

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusFiles returns the shared real-world messages, skipping the test when
// they are not there.
func corpusFiles(t testing.TB) []string {
	// The package is one level below the module root; the corpus sits beside
	// the module.
	dir := filepath.Join("..", "..", "shared", "corpus", "messages")
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) == 0 {
		t.Skipf("no corpus in %s", dir)
	}
	return files
}

func TestCorpus(t *testing.T) {
	for _, name := range corpusFiles(t) {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(name), func(t *testing.T) {
			s := Parse(raw, Options{})
			checkSummary(t, raw, s, defaultMaxText)
			if want := scanMessageID(raw); s.Envelope.MessageID != want {
				t.Errorf("MessageID = %q, a plain scan of the header finds %q", s.Envelope.MessageID, want)
			}
			h0, h1, _ := s.Section(nil, "HEADER")
			b0, b1, _ := s.Section(nil, "TEXT")
			if h0 != 0 || h1 != b0 || b1 != int64(len(raw)) {
				t.Errorf("HEADER [%d,%d) and TEXT [%d,%d) do not split the message of %d bytes", h0, h1, b0, b1, len(raw))
			}
		})
	}
}

// scanMessageID finds the Message-ID the simplest possible way: the first
// Message-ID field before the first empty line, unfolded, between < and >.
func scanMessageID(raw []byte) string {
	lines := strings.Split(string(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))), "\n")
	for i, line := range lines {
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || line[0] == ' ' || line[0] == '\t' || !strings.EqualFold(strings.TrimSpace(name), "Message-ID") {
			continue
		}
		for _, next := range lines[i+1:] {
			if next == "" || next[0] != ' ' && next[0] != '\t' {
				break
			}
			value += next
		}
		if _, id, ok := strings.Cut(value, "<"); ok {
			id, _, _ = strings.Cut(id, ">")
			return strings.TrimSpace(id)
		}
		return strings.TrimSpace(value)
	}
	return ""
}
