package mailparse

import (
	"testing"
)

// FuzzParse checks the invariants that hold for any input: no panic,
// offsets inside the message and nested, valid UTF-8 text within its cap,
// sections inside the message, and a lossless stored form.
func FuzzParse(f *testing.F) {
	seeds := []string{
		mixedMessage,
		deepMessage(40),
		"",
		"\r\n\r\n",
		"Subject: =?utf-8?q?broken?= =?x-unknown?b?SGk=?=\n\nbody",
		"Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: message/rfc822\n\nContent-Type: multipart/alternative; boundary=b\n\n--b\n\nx\n--b--\n",
		"Content-Type: text/html; charset=\"utf-8\"\nContent-Transfer-Encoding: quoted-printable\n\n<p>a=\n&amp;<script>x</script>&#x1F600;&#0;<!-- c",
		"Content-Type: text/plain; name*0*=utf-8''%E2; name*1*=%82%AC; name*2=x\nContent-Disposition: attachment; filename*=bogus'x'%ZZ\n\n",
		"Date: Mon, 30 Feb 2011 25:61:00 +9999\nFrom: a@, <b@c>, \"x\" <\nTo: g:;, h\nMessage-ID: <a\n\n",
		"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogaGkKCmhp\n",
		"From \x00\xff\nX: \xff\xfe\n \xc3\n\n\xff",
		"Content-Type: multipart/digest; boundary=d\n\n--d\n\n--d\n--d--",
	}
	for _, s := range seeds {
		f.Add([]byte(s), 0)
		f.Add([]byte(crlf(s)), 17)
	}
	f.Fuzz(func(t *testing.T, raw []byte, maxText int) {
		if maxText < 0 {
			maxText = -maxText
		}
		maxText %= 1 << 16
		s := Parse(raw, Options{MaxText: maxText})
		if maxText == 0 {
			maxText = defaultMaxText
		}
		checkSummary(t, raw, s, maxText)
		// Every part number that exists yields a range inside the message.
		var walk func(path []int, p *Part)
		walk = func(path []int, p *Part) {
			for _, spec := range []string{"", "MIME", "HEADER", "TEXT"} {
				if start, end, ok := s.Section(path, spec); ok && !(0 <= start && start <= end && end <= int64(len(raw))) {
					t.Errorf("Section(%v, %q) = [%d,%d) outside the message", path, spec, start, end)
				}
			}
			children := p.Children
			if p.Message != nil {
				children = p.Message.Children
				if children == nil {
					children = []*Part{p.Message}
				}
			}
			for i, c := range children {
				if len(path) < 8 {
					walk(append(path[:len(path):len(path)], i+1), c)
				}
			}
		}
		walk(nil, s.Structure)
	})
}
