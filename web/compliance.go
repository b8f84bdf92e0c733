package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// Compliance pages: retention policies, legal holds, deletions by dry run
// and confirmation, auditor accounts, and the audit log. backend decides
// who may (MayManageRetention, MayReadAudit, CreateAuditor's check) and
// audits every change as the user's login.

// planShown is the most placements a dry run's page lists; its counts are
// complete.
const planShown = 200

// auditShown is the number of audit entries per page.
const auditShown = 100

// list splits a form field of addresses or names at commas and blanks.
func list(s string) []string {
	return strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' })
}

// day parses a form date (YYYY-MM-DD); nil when empty.
func day(s string) (*time.Time, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	d, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%w: a date is YYYY-MM-DD", backend.ErrInvalid)
	}
	return &d, nil
}

func (h *Handler) compliance(w http.ResponseWriter, r *http.Request, rq *request) {
	ps, err := rq.t.RetentionPolicies()
	if err != nil {
		h.done(w, r, rq, "/web/mail", err)
		return
	}
	holds, err := rq.t.Holds()
	if err != nil {
		h.done(w, r, rq, "/web/mail", err)
		return
	}
	slices.Reverse(holds) // newest first
	h.render(w, "compliance.html", h.page(rq, map[string]any{"Policies": ps, "Holds": holds,
		"OK": r.URL.Query().Get("ok") != "", "Back": r.URL.RequestURI()}))
}

func (h *Handler) placeHold(w http.ResponseWriter, r *http.Request, rq *request) {
	hold := backend.Hold{Case: r.PostFormValue("case"), Reason: r.PostFormValue("reason"), Mailboxes: list(r.PostFormValue("mailboxes"))}
	var err error
	if hold.From, err = day(r.PostFormValue("from")); err == nil {
		hold.To, err = day(r.PostFormValue("to"))
	}
	if err == nil {
		_, err = rq.t.PlaceHold(actor(r, rq), rq.se.login, hold)
	}
	h.done(w, r, rq, "/web/compliance", err)
}

func (h *Handler) liftHold(w http.ResponseWriter, r *http.Request, rq *request) {
	_, err := rq.t.LiftHold(actor(r, rq), rq.se.login, r.PostFormValue("id"))
	h.done(w, r, rq, "/web/compliance", err)
}

// addPolicy appends a policy to the current set (a new version), or, with
// replace, takes the one of the same name out first; remove only takes it
// out.
func (h *Handler) changePolicy(w http.ResponseWriter, r *http.Request, rq *request) {
	ps, err := rq.t.RetentionPolicies()
	if err != nil {
		h.done(w, r, rq, "/web/compliance", err)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	policies := slices.DeleteFunc(slices.Clone(ps.Policies), func(p backend.Policy) bool { return p.Name == name })
	if r.PostFormValue("remove") == "" {
		p := backend.Policy{Name: name, Mailboxes: list(r.PostFormValue("mailboxes")), Folders: list(r.PostFormValue("folders")),
			Addresses: list(r.PostFormValue("addresses"))}
		for _, k := range list(r.PostFormValue("kinds")) {
			p.Kinds = append(p.Kinds, backend.MailboxKind(k))
		}
		p.Min.Years, _ = strconv.Atoi(r.PostFormValue("min_years"))
		p.Min.Days, _ = strconv.Atoi(r.PostFormValue("min_days"))
		p.Min.EndOfYear = r.PostFormValue("end_of_year") != ""
		if y, d := atoi(r.PostFormValue("max_years")), atoi(r.PostFormValue("max_days")); y > 0 || d > 0 {
			p.Max = &backend.Period{Years: int(y), Days: int(d), EndOfYear: p.Min.EndOfYear}
			p.MaxAction = r.PostFormValue("max_action")
		}
		// New policies go before the catch-all default, so that they
		// can match at all.
		at := len(policies)
		if i := slices.IndexFunc(policies, func(p backend.Policy) bool { return p.Name == backend.DefaultPolicy().Name }); i >= 0 {
			at = i
		}
		policies = slices.Insert(policies, at, p)
	}
	_, err = rq.t.SetRetentionPolicies(actor(r, rq), rq.se.login, policies)
	h.done(w, r, rq, "/web/compliance", err)
}

// deleteRequest reads the selection of a deletion from the dry-run form.
func deleteRequest(r *http.Request) (backend.DeleteRequest, error) {
	req := backend.DeleteRequest{Mailboxes: list(r.PostFormValue("mailboxes")), Folders: list(r.PostFormValue("folders")),
		All: r.PostFormValue("all") != ""}
	var err error
	req.Before, err = day(r.PostFormValue("before"))
	return req, err
}

// dryRun shows what a deletion would remove, with the form that confirms
// exactly this plan: its token, which backend checks against the plan it
// works out again when the deletion runs.
func (h *Handler) dryRun(w http.ResponseWriter, r *http.Request, rq *request) {
	req, err := deleteRequest(r)
	if err != nil {
		h.done(w, r, rq, "/web/compliance", err)
		return
	}
	pl, err := rq.t.DryRun(r.Context(), req)
	if err != nil {
		h.done(w, r, rq, "/web/compliance", err)
		return
	}
	reqJSON, _ := json.Marshal(req)
	items := pl.Items
	if len(items) > planShown {
		items = items[:planShown]
	}
	h.render(w, "plan.html", h.page(rq, map[string]any{"Plan": pl, "Items": items, "More": len(pl.Items) - len(items),
		"Request": string(reqJSON), "Back": "/web/compliance"}))
}

func (h *Handler) confirmDelete(w http.ResponseWriter, r *http.Request, rq *request) {
	var req backend.DeleteRequest
	if err := json.Unmarshal([]byte(r.PostFormValue("request")), &req); err != nil {
		h.done(w, r, rq, "/web/compliance", fmt.Errorf("%w: deletion request: %v", backend.ErrInvalid, err))
		return
	}
	// The run goes on if the browser gives up waiting; it is resumed
	// after a restart anyway.
	rep, err := rq.t.Delete(context.WithoutCancel(actor(r, rq)), rq.se.login, req, r.PostFormValue("token"))
	if errors.Is(err, backend.ErrStale) {
		err = fmt.Errorf("%w: %s", err, text(rq.lang, "stale"))
	}
	if err != nil {
		h.done(w, r, rq, "/web/compliance", err)
		return
	}
	h.render(w, "deleted.html", h.page(rq, map[string]any{"Report": rep, "Back": "/web/compliance"}))
}

// mayAuditors: admins and compliance users create auditor accounts (the
// rule CreateAuditor applies).
func mayAuditors(t *backend.Tenant, login string) bool {
	return t.MayAdminister(login) || t.MayManageRetention(login)
}

func (h *Handler) auditors(w http.ResponseWriter, r *http.Request, rq *request) {
	all := slices.DeleteFunc(rq.t.Users(), func(u backend.User) bool { return u.Scope == nil })
	us, pg := pageOf(rq.lang, all, int(atoi(r.URL.Query().Get("page"))), "/web/auditors")
	h.render(w, "auditors.html", h.page(rq, map[string]any{"Auditors": us, "P": pg, "Now": time.Now(), "MinPassword": backend.MinPasswordLength,
		"OK": r.URL.Query().Get("ok") != "", "Back": r.URL.RequestURI()}))
}

func (h *Handler) addAuditor(w http.ResponseWriter, r *http.Request, rq *request) {
	spec := backend.AuditorSpec{Login: r.PostFormValue("login"), Password: r.PostFormValue("password"),
		Mailboxes: list(r.PostFormValue("mailboxes")), All: r.PostFormValue("all") != ""}
	err := backend.CheckNewPassword(spec.Password)
	for _, f := range []struct {
		in  string
		out *time.Time
	}{{"since", &spec.Since}, {"until", &spec.Until}, {"expires", &spec.Expires}} {
		d, derr := day(r.PostFormValue(f.in))
		if d != nil {
			*f.out = *d
		}
		err = errors.Join(err, derr)
	}
	if err == nil {
		_, err = rq.t.CreateAuditor(actor(r, rq), rq.se.login, spec)
	}
	h.done(w, r, rq, "/web/auditors", err)
}

// audit shows the audit log, newest first, filtered, one page at a time.
func (h *Handler) audit(w http.ResponseWriter, r *http.Request, rq *request) {
	q := r.URL.Query()
	f := backend.AuditFilter{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")), Text: strings.TrimSpace(q.Get("text"))}
	since, err := day(q.Get("since"))
	if err == nil && since != nil {
		f.Since = *since
	}
	until, err2 := day(q.Get("until"))
	if err2 == nil && until != nil {
		f.Until = until.AddDate(0, 0, 1) // the day given is included
	}
	if err = errors.Join(err, err2); err != nil {
		h.done(w, r, rq, "/web/audit", err)
		return
	}
	entries, next, err := rq.t.AuditPage(f, atoi(q.Get("before")), auditShown)
	if err != nil {
		h.done(w, r, rq, "/web/mail", err)
		return
	}
	v := url.Values{}
	for _, k := range []string{"actor", "action", "text", "since", "until"} {
		if s := q.Get(k); s != "" {
			v.Set(k, s)
		}
	}
	data := map[string]any{"Entries": entries, "Q": q, "Back": r.URL.RequestURI()}
	if next != 0 {
		v.Set("before", strconv.FormatUint(next, 10))
		data["Next"] = "/web/audit?" + v.Encode()
	}
	if q.Get("before") != "" {
		v.Del("before")
		data["First"] = "/web/audit?" + v.Encode()
	}
	h.render(w, "audit.html", h.page(rq, data))
}
