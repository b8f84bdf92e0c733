package mailparse

import "testing"

func TestSection(t *testing.T) {
	const header = "Subject: sections\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
	const body = "preamble\r\n" +
		"--x\r\n" +
		"Content-Type: text/plain\r\n\r\n" +
		"part one\r\n" +
		"--x\r\n" +
		"Content-Type: multipart/alternative; boundary=y\r\n\r\n" +
		"--y\r\n\r\n" +
		"two dot one\r\n" +
		"--y\r\n" +
		"Content-Type: text/html\r\n\r\n" +
		"<p>two dot two</p>\r\n" +
		"--y--\r\n" +
		"--x\r\n" +
		"Content-Type: message/rfc822\r\n\r\n" +
		"Subject: inner\r\n\r\n" +
		"inner body\r\n" +
		"--x\r\n" +
		"Content-Type: message/rfc822\r\n\r\n" +
		"Subject: inner multi\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n" +
		"--z\r\n\r\n" +
		"inner one\r\n" +
		"--z\r\n\r\n" +
		"inner two\r\n" +
		"--z--\r\n" +
		"--x--\r\n"
	raw := header + body
	s := Parse([]byte(raw), Options{})
	checkSummary(t, []byte(raw), s, defaultMaxText)

	tests := []struct {
		path []int
		spec string
		want string // "" with ok false when the section does not exist
		ok   bool
	}{
		{nil, "", raw, true},
		{nil, "HEADER", header, true},
		{nil, "header.fields", header, true},
		{nil, "TEXT", body, true},
		{nil, "MIME", "", false},
		{[]int{1}, "", "part one", true},
		{[]int{1}, "MIME", "Content-Type: text/plain\r\n\r\n", true},
		{[]int{1}, "HEADER", "", false},
		{[]int{1, 1}, "", "", false},
		{[]int{2}, "MIME", "Content-Type: multipart/alternative; boundary=y\r\n\r\n", true},
		{[]int{2}, "", "--y\r\n\r\ntwo dot one\r\n--y\r\nContent-Type: text/html\r\n\r\n<p>two dot two</p>\r\n--y--", true},
		{[]int{2, 1}, "", "two dot one", true},
		{[]int{2, 1}, "MIME", "\r\n", true},
		{[]int{2, 2}, "", "<p>two dot two</p>", true},
		{[]int{2, 3}, "", "", false},
		{[]int{3}, "", "Subject: inner\r\n\r\ninner body", true},
		{[]int{3}, "HEADER", "Subject: inner\r\n\r\n", true},
		{[]int{3}, "TEXT", "inner body", true},
		{[]int{3, 1}, "", "inner body", true},
		{[]int{3, 2}, "", "", false},
		{[]int{4, 2}, "", "inner two", true},
		{[]int{4, 2}, "MIME", "\r\n", true},
		{[]int{4, 1, 1}, "", "", false},
		{[]int{4}, "TEXT", "--z\r\n\r\ninner one\r\n--z\r\n\r\ninner two\r\n--z--", true},
		{[]int{5}, "", "", false},
		{[]int{0}, "", "", false},
		{[]int{1}, "BOGUS", "", false},
	}
	for _, tt := range tests {
		start, end, ok := s.Section(tt.path, tt.spec)
		if ok != tt.ok {
			t.Errorf("Section(%v, %q) ok = %v, want %v", tt.path, tt.spec, ok, tt.ok)
			continue
		}
		if got := raw[start:end]; ok && got != tt.want {
			t.Errorf("Section(%v, %q) = %q, want %q", tt.path, tt.spec, got, tt.want)
		}
	}
}

func TestSectionSinglePart(t *testing.T) {
	const raw = "Subject: one part\nContent-Type: message/rfc822\n\nSubject: embedded\n\nhello\n"
	s := Parse([]byte(raw), Options{})
	tests := []struct {
		path []int
		spec string
		want string
		ok   bool
	}{
		// RFC 3501: a non-multipart message has the single part 1, its body.
		{[]int{1}, "", "Subject: embedded\n\nhello\n", true},
		{[]int{1}, "HEADER", "Subject: embedded\n\n", true},
		{[]int{1}, "TEXT", "hello\n", true},
		{[]int{1, 1}, "", "hello\n", true},
		{[]int{2}, "", "", false},
	}
	for _, tt := range tests {
		start, end, ok := s.Section(tt.path, tt.spec)
		if ok != tt.ok || ok && raw[start:end] != tt.want {
			t.Errorf("Section(%v, %q) = %q, %v; want %q, %v", tt.path, tt.spec, raw[start:end], ok, tt.want, tt.ok)
		}
	}
}
