package mailparse

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestScratchCorpus(t *testing.T) {
	files, _ := filepath.Glob("../../shared/corpus/messages/*.eml")
	counts := map[string]int{}
	examples := map[string]string{}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		s := Parse(raw, Options{})
		for _, p := range s.Problems {
			k := p
			if i := strings.IndexAny(k, "\"%0123456789"); i > 0 {
				k = k[:i]
			}
			if strings.HasPrefix(p, "part ") {
				k = "part" + p[strings.Index(p, ":"):]
				if i := strings.IndexAny(k, "\"%0123456789"); i > 0 {
					k = k[:i]
				}
			}
			counts[k]++
			examples[k] = filepath.Base(f) + ": " + p
		}
	}
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
	for _, k := range keys {
		ex := examples[k]
		if len(ex) > 200 {
			ex = ex[:200]
		}
		fmt.Printf("%4d %s\n     %s\n", counts[k], k, ex)
	}
}

func TestScratchNoEmpty(t *testing.T) {
	files, _ := filepath.Glob("../../shared/corpus/messages/*.eml")
	n := 0
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		s := Parse(raw, Options{})
		for _, p := range s.Problems {
			if p == "no empty line between header and body" && n < 12 {
				n++
				st := s.Structure
				end := min(int(st.BodyStart)+80, len(raw))
				fmt.Printf("%s: %q\n", filepath.Base(f), raw[max(0, int(st.BodyStart)-60):end])
			}
		}
	}
}

func TestScratchOne(t *testing.T) {
	raw, _ := os.ReadFile("../../shared/corpus/messages/" + os.Getenv("MSG"))
	s := Parse(raw, Options{})
	fmt.Println(s.Problems)
	var walk func(p *Part, ind string)
	walk = func(p *Part, ind string) {
		fmt.Printf("%s%s/%s %v enc=%s hs=%d bs=%d end=%d lines=%d ds=%d name=%q\n", ind, p.Type, p.Subtype, p.Params, p.Encoding, p.HeaderStart, p.BodyStart, p.End, p.Lines, p.DecodedSize, p.FileName())
		for _, c := range p.Children {
			walk(c, ind+"  ")
		}
		if p.Message != nil {
			walk(p.Message, ind+"  >")
		}
	}
	walk(s.Structure, "")
	fmt.Printf("env: %+v\n", s.Envelope)
	fmt.Printf("att: %q\npreview: %q\n", s.Attachments, s.Preview)
	if os.Getenv("TEXT") != "" {
		fmt.Println(s.Text)
	}
}
