package mailparse

import "testing"

func TestHTMLText(t *testing.T) {
	tests := []struct{ html, want string }{
		{"<p>One</p><p>Two</p>", "One\nTwo"},
		{"a<br>b<BR/>c", "a\nb\nc"},
		{"<table><tr><td>x</td><td>y</td></tr><tr><td>z</td></tr></table>", "x y\nz"},
		{"<head><title>Title</title><style>p{}</style></head><script>if (a<b) x()</script>text", "Title\ntext"},
		{"<!-- hidden -->shown<!-- unterminated", "shown"},
		{"&lt;tag&gt; &amp; &quot;q&quot; &euro;&#8364;&#x20AC; &copy; &bogus; & alone", "<tag> & \"q\" €€€ © &bogus; & alone"},
		{"spaces   and\n\ttabs", "spaces and tabs"},
		{"a < b and c<1", "a < b and c<1"},
		{`<a href="x>y">link</a> <img alt='>'>after`, "link after"},
		{"&#0;&#xD800;&#99999999;", "\uFFFD\uFFFD\uFFFD"},
		{"<p>unclosed <b attr='x", "unclosed"},
	}
	for _, tt := range tests {
		if got := string(appendHTMLText(nil, []byte(tt.html))); got != tt.want {
			t.Errorf("appendHTMLText(%q) = %q, want %q", tt.html, got, tt.want)
		}
	}
}
