package mailparse

import "testing"

func TestBaseSubject(t *testing.T) {
	for _, tc := range []struct {
		in, base string
		reply    bool
	}{
		{"Hello", "Hello", false},
		{"Re: Hello", "Hello", true},
		{"RE:  Re: re[2]: Hello  ", "Hello", true},
		{"Fwd: Hello (fwd)", "Hello", true},
		{"FW: Hello", "Hello", true},
		{"[list] Re: Hello", "Hello", true},
		{"Re: [list] Hello", "Hello", true},
		{"[list]", "[list]", false},
		{"[fwd: Re: Hello]", "Hello", true},
		{"  Hello \t\r\n  world  ", "Hello world", false},
		{"Report: figures", "Report: figures", false},
		{"Fwd:", "", true},
		{"", "", false},
		{"Re: [fwd: [x] hi]", "hi", true},
	} {
		base, reply := BaseSubject(tc.in)
		if base != tc.base || reply != tc.reply {
			t.Errorf("BaseSubject(%q) = %q, %v; want %q, %v", tc.in, base, reply, tc.base, tc.reply)
		}
	}
}
