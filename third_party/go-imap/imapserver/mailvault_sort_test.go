package imapserver_test

// Tests of the SORT, ESORT and THREAD patch (see third_party/README.md).

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// sortSession answers SORT and THREAD with fixed results and records what
// it was asked.
type sortSession struct {
	imapserver.Session
	asked string
}

func (s *sortSession) Sort(kind imapserver.NumKind, criteria []imap.SortCriterion, search *imap.SearchCriteria) ([]uint32, error) {
	s.asked = fmt.Sprintf("%v %v %d", kind == imapserver.NumKindUID, criteria, len(search.UID))
	return []uint32{7, 3, 4, 5, 1}, nil
}

func (s *sortSession) ThreadAlgorithms() []imap.ThreadAlgorithm {
	return []imap.ThreadAlgorithm{imap.ThreadReferences}
}

func (s *sortSession) Thread(kind imapserver.NumKind, alg imap.ThreadAlgorithm, search *imap.SearchCriteria) ([]imap.ThreadData, error) {
	s.asked = fmt.Sprintf("%v %s", kind == imapserver.NumKindUID, alg)
	return []imap.ThreadData{
		{Chain: []uint32{2}},
		// A single subthread continues the chain.
		{Chain: []uint32{3, 6}, SubThreads: []imap.ThreadData{{Chain: []uint32{4}, SubThreads: []imap.ThreadData{{Chain: []uint32{23}}, {Chain: []uint32{44, 7}}}}}},
		// A missing parent.
		{SubThreads: []imap.ThreadData{{Chain: []uint32{8}}, {Chain: []uint32{9}}}},
	}, nil
}

func TestSortThread(t *testing.T) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("user", "pass")
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	var sess *sortSession
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess = &sortSession{Session: mem.NewSession()}
			return sess, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapESearch: {}, imap.CapLiteralPlus: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := dial(t, ln.Addr().String())
	if u := c.want("CAPABILITY", "OK"); !strings.Contains(u[0], " LITERAL+") || strings.Contains(u[0], "LITERAL-") {
		t.Errorf("capabilities before login: %q", u)
	}
	c.want("LOGIN user pass", "OK")
	caps := c.want("CAPABILITY", "OK")[0]
	for _, want := range []string{" SORT", " ESORT", " THREAD=REFERENCES"} {
		if !strings.Contains(caps, want) {
			t.Errorf("capabilities %q lack%s", caps, want)
		}
	}
	c.want("SORT (DATE) UTF-8 ALL", "BAD") // nothing selected
	c.want("SELECT INBOX", "OK")
	for _, tc := range []struct{ cmd, status, untagged, asked string }{
		{"SORT (REVERSE DATE subject) UTF-8 ALL", "OK", "* SORT 7 3 4 5 1", "false [{DATE true} {SUBJECT false}] 0"},
		{"UID SORT (ARRIVAL) US-ASCII UID 1:4", "OK", "* SORT 7 3 4 5 1", "true [{ARRIVAL false}] 1"},
		{"SORT RETURN (MIN MAX COUNT) (SIZE) UTF-8 ALL", "OK", `* ESEARCH (TAG "a8") MIN 1 MAX 7 COUNT 5`, ""},
		{"UID SORT RETURN () (SIZE) UTF-8 ALL", "OK", `* ESEARCH (TAG "a9") UID ALL 7,3:5,1`, ""},
		{"SORT RETURN (PARTIAL 2:3) (SIZE) UTF-8 ALL", "OK", `* ESEARCH (TAG "a10") PARTIAL (2:3 3:4)`, ""},
		{"SORT RETURN (PARTIAL 9:10) (SIZE) UTF-8 ALL", "OK", `* ESEARCH (TAG "a11") PARTIAL (9:10 NIL)`, ""},
		{"SORT (COLOR) UTF-8 ALL", "BAD", "", ""},
		{"SORT () UTF-8 ALL", "BAD", "", ""},
		{"SORT (DATE) KOI8-R ALL", "NO [BADCHARSET]", "", ""},
		{"THREAD REFERENCES UTF-8 ALL", "OK", "* THREAD (2)(3 6 4 (23)(44 7))((8)(9))", "false REFERENCES"},
		{"UID THREAD references UTF-8 ALL", "OK", "* THREAD (2)(3 6 4 (23)(44 7))((8)(9))", "true REFERENCES"},
		{"THREAD ORDEREDSUBJECT UTF-8 ALL", "BAD", "", ""},
	} {
		sess.asked = ""
		u, st := c.do(tc.cmd)
		if !strings.HasPrefix(st, tc.status) {
			t.Errorf("%s: %s, want %s", tc.cmd, st, tc.status)
			continue
		}
		if tc.untagged != "" && (len(u) != 1 || u[0] != tc.untagged) {
			t.Errorf("%s: %q, want %q", tc.cmd, u, tc.untagged)
		}
		if tc.asked != "" && sess.asked != tc.asked {
			t.Errorf("%s: session asked %q, want %q", tc.cmd, sess.asked, tc.asked)
		}
	}
}
