package dirsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// smallAD is an AD-like directory of n users, all in "Archive Users" except
// the last.
func smallAD(t *testing.T, n int) (*adModel, *slapd) {
	m := newADModel(n)
	m.users = m.users[:n] // without the user colliding with a local one
	archive := &adGroup{cn: "Archive Users", users: slices.Clone(m.users[:n-1])}
	m.groups = append(m.groups, archive)
	return m, startSlapd(t, m.ldif(), false)
}

// TestADGroupScopedUsers syncs only the members of a group, found through
// memberOf in the user filter (computed by the dynlist overlay, as AD
// stores it). Taking people out of the group touches no user entry; they
// leave the archive's view all the same, and a run that would disable more
// than max_gone users is refused.
func TestADGroupScopedUsers(t *testing.T) {
	m, sl := smallAD(t, 20)
	a := newArchive(t, "acme.example", "acme-old.example")
	ctx := ctxFor(t)
	prof := adProfile(sl.url())
	prof.Roles = nil
	prof.UserFilter = "(&(objectClass=user)(memberOf=cn=Archive Users,ou=groups," + testSuffix + "))"
	prof.MaxGone = 3
	if err := a.s.PutProfile(ctx, "acme", prof); err != nil {
		t.Fatal(err)
	}
	rep := a.run(t, "corp", false)
	if rep.Read.Users != 19 || actionCounts(rep)["create-user"] != 19 {
		t.Fatalf("first sync read %+v: %v", rep.Read, actionCounts(rep))
	}
	outsider := m.users[19]
	if _, err := a.tn.User(m.login(outsider)); !errors.Is(err, backend.ErrNotFound) {
		t.Fatal("a user outside the group was synced")
	}

	l := sl.admin()
	defer l.Close()
	group := m.group("Archive Users")
	modTimes := func() string {
		res, err := l.Search(newSearch(testSuffix, "(objectClass=user)", "modifyTimestamp"))
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, e := range res.Entries {
			b.WriteString(e.DN + e.GetAttributeValue("modifyTimestamp"))
		}
		return b.String()
	}
	before := modTimes()
	time.Sleep(1100 * time.Millisecond) // modifyTimestamp has one-second resolution
	removed := group.users[:2]
	group.users = group.users[2:]
	m.setMembers(t, l, group)
	if modTimes() != before {
		t.Fatal("changing the group changed users' modifyTimestamp; the test would not show what it should")
	}
	rep = a.run(t, "corp", false)
	for _, u := range removed {
		if !has(rep, "disable-user", m.login(u)) {
			t.Fatalf("%s left the group but was not disabled: %v", m.login(u), rep.Changes)
		}
	}

	// Emptying most of the group trips the limit; nothing changes.
	before = fmt.Sprint(a.tn.Users())
	group.users = group.users[:2]
	m.setMembers(t, l, group)
	rep, err := a.s.Run(ctx, "acme", "corp", false)
	if !errors.Is(err, backend.ErrDenied) || !strings.Contains(rep.Error, "more than the limit of 3") {
		t.Fatalf("mass departure: %v", err)
	}
	if fmt.Sprint(a.tn.Users()) != before {
		t.Fatal("a refused run changed users")
	}
}

func TestSchedule(t *testing.T) {
	_, sl := smallAD(t, 5)
	a := newArchive(t, "acme.example", "acme-old.example")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prof := adProfile(sl.url())
	prof.Interval = Duration(time.Hour)
	if err := a.s.PutProfile(ctx, "acme", prof); err != nil {
		t.Fatal(err)
	}
	manual := prof
	manual.Name, manual.Domains, manual.Interval = "manual", nil, 0
	if err := a.p.AddDomain(ctx, "acme", "other.example"); err != nil {
		t.Fatal(err)
	}
	manual.Domains = []string{"other.example"}
	if err := a.s.PutProfile(ctx, "acme", manual); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.s.Schedule(ctx) }()
	// Saving schedules nothing: the first run is the operator's.
	if due, err := a.s.computeDue(ctx, backend.DirectoryProfileRef{Tenant: "acme", Name: "corp"}); err != nil || !due.IsZero() {
		t.Fatalf("a saved profile that never ran is due %v (%v)", due, err)
	}
	if _, err := a.s.Run(ctx, "acme", "corp", false); err != nil {
		t.Fatal(err)
	}
	st, err := a.s.Status(ctx, "acme", "corp")
	if err != nil || st.Error != "" || st.Changes == 0 || st.LastSuccess != st.LastRun {
		t.Fatalf("first run: %+v %v", st, err)
	}
	// The next run is an hour after the last; the profile without an
	// interval never runs by itself.
	due, err := a.s.computeDue(ctx, backend.DirectoryProfileRef{Tenant: "acme", Name: "corp"})
	if err != nil || !due.Equal(st.LastRun.Add(time.Hour)) {
		t.Fatalf("next run %v (%v), want %v", due, err, st.LastRun.Add(time.Hour))
	}
	if st, _ := a.s.Status(ctx, "acme", "manual"); !st.LastRun.IsZero() {
		t.Fatal("a profile without interval ran on the schedule")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Schedule returned %v", err)
	}
}

// TestAPI drives the management endpoints over HTTP.
func TestAPI(t *testing.T) {
	_, sl := smallAD(t, 5)
	a := newArchive(t, "acme.example", "acme-old.example")
	mux := http.NewServeMux()
	a.s.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, path, body string, want int) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
		return b
	}
	base := "/api/v1/tenants/acme/dirsync"
	prof := adProfile(sl.url())
	body, _ := json.Marshal(prof)
	call("PUT", base+"/profiles/corp", `{"preset":"ad"`, http.StatusBadRequest)
	call("PUT", base+"/profiles/other", string(body), http.StatusBadRequest) // name differs
	call("PUT", base+"/profiles/corp", strings.Replace(string(body), `"ad"`, `"novell"`, 1), http.StatusBadRequest)
	call("PUT", base+"/profiles/corp", string(body), http.StatusOK)
	prof.Name = "second"
	body, _ = json.Marshal(prof)
	call("PUT", base+"/profiles/second", string(body), http.StatusConflict) // same domains
	list := call("GET", base+"/profiles", "", http.StatusOK)
	if strings.Contains(string(list), testSvcPW) || !strings.Contains(string(list), `"corp"`) {
		t.Fatalf("profile list: %s", list)
	}
	// Changing the profile without a password keeps the stored one.
	call("PUT", base+"/profiles/corp", `{"url":"`+sl.url()+`","bind_dn":"`+testSvcDN+`","base_dn":"`+testSuffix+`","preset":"ad","domains":["acme.example"],"interval":"30m"}`, http.StatusOK)
	var dry Report
	if err := json.Unmarshal(call("POST", base+"/profiles/corp/run?dry_run=true", "", http.StatusOK), &dry); err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || dry.Error != "" || actionCounts(&dry)["create-user"] != 5 || len(a.tn.Users()) != 0 {
		t.Fatalf("dry run over the API: %+v", dry)
	}
	call("POST", base+"/profiles/corp/run?dry_run=maybe", "", http.StatusBadRequest)
	call("POST", base+"/profiles/nope/run", "", http.StatusNotFound)
	var reps []Report
	if err := json.Unmarshal(call("POST", base+"/run", "", http.StatusOK), &reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].DryRun || len(a.tn.Users()) != 5 {
		t.Fatalf("run over the API: %+v", reps)
	}
	var info ProfileInfo
	if err := json.Unmarshal(call("GET", base+"/profiles/corp", "", http.StatusOK), &info); err != nil {
		t.Fatal(err)
	}
	if info.Interval != Duration(30*time.Minute) || info.Status == nil || info.Status.Changes != len(reps[0].Changes) || info.BindPassword != "" {
		t.Fatalf("profile: %+v status %+v", info, info.Status)
	}
	var text strings.Builder
	if err := reps[0].WriteText(&text); err != nil || !strings.Contains(text.String(), "made "+fmt.Sprint(len(reps[0].Changes))+" changes") ||
		!strings.Contains(text.String(), "create-user") {
		t.Fatalf("report text:\n%s", text.String())
	}
	call("DELETE", base+"/profiles/corp", "", http.StatusNoContent)
	call("DELETE", base+"/profiles/corp", "", http.StatusNotFound)
	call("GET", "/api/v1/tenants/nosuch/dirsync/profiles", "", http.StatusNotFound)
	// The domain is free again, and the deleted profile's users can no
	// longer log in.
	if doms, _ := a.tn.DirectoryDomains(); len(doms) != 0 {
		t.Fatalf("domains still claimed: %v", doms)
	}
	a.loginRefused(t, "p0001@acme.example", "Secret-0001!")
	if !strings.Contains(a.logs.String(), "directory profile does not exist") {
		t.Fatal("no log line for a login whose directory profile is gone")
	}
}
