package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/dirsync"
	"github.com/mailvault/mailvault/pull"
	"github.com/mailvault/mailvault/server/answer"
)

// The tenant admin console: users, groups, archive mailboxes and grants,
// directory sync, journal access and usage. Every change goes through the
// backend call the management API makes, audited as the admin's login;
// who may administer is backend's MayAdminister.

// consolePage is the number of users or mailboxes per page.
const consolePage = 50

// nav is which parts of the front end the header links to.
type nav struct {
	Admin, Compliance, Auditors, Audit bool
}

func (h *Handler) nav(rq *request) nav {
	l := rq.se.login
	n := nav{Admin: rq.t.MayAdminister(l), Compliance: rq.t.MayManageRetention(l), Audit: rq.t.MayReadAudit(l)}
	n.Auditors = n.Admin || n.Compliance
	return n
}

// role wraps a handler that needs a role backend decides on; anybody else
// gets 403 and learns nothing of the page.
func (h *Handler) role(may func(*backend.Tenant, string) bool, fn func(http.ResponseWriter, *http.Request, *request)) func(http.ResponseWriter, *http.Request, *request) {
	return func(w http.ResponseWriter, r *http.Request, rq *request) {
		if !may(rq.t, rq.se.login) {
			w.WriteHeader(http.StatusForbidden)
			h.render(w, "result.html", h.page(rq, map[string]any{"Error": text(rq.lang, "forbidden")}))
			return
		}
		fn(w, r, rq)
	}
}

func mayAdminister(t *backend.Tenant, login string) bool { return t.MayAdminister(login) }
func mayRetention(t *backend.Tenant, login string) bool  { return t.MayManageRetention(login) }
func mayAudit(t *backend.Tenant, login string) bool      { return t.MayReadAudit(login) }

// actor is the context of a change made by the logged-in user: audited as
// their login.
func actor(r *http.Request, rq *request) context.Context {
	return backend.WithActor(r.Context(), rq.se.login)
}

// done answers a change: back to the page on success, else the error with
// the status the API would give.
func (h *Handler) done(w http.ResponseWriter, r *http.Request, rq *request, back string, err error) {
	if err == nil {
		sep := "?"
		if strings.Contains(back, "?") {
			sep = "&"
		}
		http.Redirect(w, r, back+sep+"ok=1", http.StatusSeeOther)
		return
	}
	code := answer.Status(err)
	if code == http.StatusInternalServerError {
		h.log.Error("web: console change", "path", r.URL.Path, "err", err)
	}
	w.WriteHeader(code)
	h.render(w, "result.html", h.page(rq, map[string]any{"Error": text(rq.lang, "failed"), "Detail": err.Error(), "BackTo": back}))
}

// pager is the paging of a console list.
type pager struct {
	Page, Pages, Total int
	Base               string // URL the page number is appended to
	L                  string
}

// pageOf cuts page pg (from 1) of items.
func pageOf[T any](l string, items []T, pg int, base string) ([]T, pager) {
	pages := max(1, (len(items)+consolePage-1)/consolePage)
	pg = min(max(pg, 1), pages)
	lo := (pg - 1) * consolePage
	hi := min(lo+consolePage, len(items))
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return items[lo:hi], pager{Page: pg, Pages: pages, Total: len(items), Base: base + sep, L: l}
}

// roles reads the role checkboxes of a form.
func roles(r *http.Request) ([]backend.Role, error) {
	var out []backend.Role
	for _, s := range r.PostForm["role"] {
		ro, err := backend.ParseRole(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", backend.ErrInvalid, err)
		}
		out = append(out, ro)
	}
	return out, nil
}

var allRoles = []backend.Role{backend.RoleReader, backend.RoleAdmin, backend.RoleCompliance, backend.RoleAuditor}

func (h *Handler) adminHome(w http.ResponseWriter, r *http.Request, rq *request) {
	st := rq.t.Stats()
	info := rq.t.Info()
	data := map[string]any{"Stats": st, "Quotas": info.Quotas, "Domains": info.Domains, "RequireTOTP": rq.t.RequiresTOTP(),
		"OK": r.URL.Query().Get("ok") != "", "Back": r.URL.RequestURI()}
	// The newest verify run is in the audit log (mailvault verify, the
	// API's POST .../verify).
	if es, _, err := rq.t.AuditPage(backend.AuditFilter{Action: "verify"}, 0, 1); err == nil && len(es) == 1 {
		data["Verify"] = es[0]
	}
	if acc, err := rq.t.JournalAccess(); err == nil {
		data["Journal"] = acc
	}
	if h.dir != nil {
		type profile struct {
			dirsync.Profile
			Status *dirsync.Status
		}
		var ps []profile
		list, err := h.dir.Profiles(r.Context(), rq.t.Name)
		if err != nil {
			h.log.Error("web: directory profiles", "err", err)
		}
		for _, p := range list {
			st, err := h.dir.Status(r.Context(), rq.t.Name, p.Name)
			if err != nil {
				st = &dirsync.Status{Error: err.Error()}
			}
			ps = append(ps, profile{Profile: p, Status: st})
		}
		data["Directory"] = ps
		data["HasDirectory"] = true
	}
	if h.pull != nil {
		ps, err := h.pull.Profiles(r.Context(), rq.t.Name)
		if err != nil {
			h.log.Error("web: pull profiles", "err", err)
		}
		data["Imports"] = ps
		data["HasPull"] = true
	}
	h.render(w, "admin.html", h.page(rq, data))
}

// pullNow starts a pull profile's run, as POST .../pull/profiles/{p}/run
// does, but in the background: a pull can take hours, and the overview
// shows its progress. The run audits itself; who asked is audited too.
func (h *Handler) pullNow(w http.ResponseWriter, r *http.Request, rq *request) {
	if h.pull == nil {
		h.done(w, r, rq, "/web/admin", backend.ErrNotFound)
		return
	}
	name := r.PostFormValue("profile")
	ctx := actor(r, rq)
	in, err := h.pull.Profile(ctx, rq.t.Name, name)
	if err == nil && in.Running != nil {
		err = fmt.Errorf("%w: %s is running", pull.ErrBusy, name)
	}
	if err != nil {
		h.done(w, r, rq, "/web/admin", err)
		return
	}
	rq.t.Audit(ctx, rq.se.login, "pull-run-request", name)
	tenant := rq.t.Name
	h.runs.Add(1)
	go func() {
		defer h.runs.Done()
		if _, err := h.pull.Run(backend.WithActor(h.bg, rq.se.login), tenant, name); err != nil {
			h.log.Info("web: pull run", "tenant", tenant, "profile", name, "err", err)
		}
	}()
	h.done(w, r, rq, "/web/admin", nil)
}

// syncNow runs a directory profile now, as POST .../dirsync/profiles/{p}/run
// does; the run audits itself, and who asked for it is audited too.
func (h *Handler) syncNow(w http.ResponseWriter, r *http.Request, rq *request) {
	if h.dir == nil {
		h.done(w, r, rq, "/web/admin", backend.ErrNotFound)
		return
	}
	name := r.PostFormValue("profile")
	ctx := actor(r, rq)
	if _, err := h.dir.Profile(ctx, rq.t.Name, name); err != nil {
		h.done(w, r, rq, "/web/admin", err)
		return
	}
	rq.t.Audit(ctx, rq.se.login, "dirsync-run-request", name)
	// A failed run is recorded in the profile's status, which the page
	// shows; only a run that could not start is an error here.
	rep, err := h.dir.Run(ctx, rq.t.Name, name, false)
	if rep != nil {
		err = nil
	}
	h.done(w, r, rq, "/web/admin", err)
}

func (h *Handler) adminUsers(w http.ResponseWriter, r *http.Request, rq *request) {
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	all := rq.t.Users()
	if q != "" {
		all = slices.DeleteFunc(all, func(u backend.User) bool { return !strings.Contains(u.Login, q) })
	}
	users, pg := pageOf(rq.lang, all, int(atoi(r.URL.Query().Get("page"))), "/web/admin/users?q="+url.QueryEscape(q))
	h.render(w, "users.html", h.page(rq, map[string]any{"Users": users, "P": pg, "Q": q, "Roles": allRoles,
		"MinPassword": backend.MinPasswordLength, "OK": r.URL.Query().Get("ok") != "", "Back": r.URL.RequestURI()}))
}

func (h *Handler) addUser(w http.ResponseWriter, r *http.Request, rq *request) {
	back := "/web/admin/users"
	ro, err := roles(r)
	if err == nil {
		err = backend.CheckNewPassword(r.PostFormValue("password"))
	}
	if err == nil {
		_, err = rq.t.CreateUser(actor(r, rq), backend.UserSpec{Login: r.PostFormValue("login"), Password: r.PostFormValue("password"),
			Roles: ro, Mailbox: r.PostFormValue("mailbox") != ""})
	}
	h.done(w, r, rq, back, err)
}

func (h *Handler) disableUser(w http.ResponseWriter, r *http.Request, rq *request) {
	login := r.PostFormValue("login")
	var err error
	if strings.EqualFold(strings.TrimSpace(login), rq.se.login) {
		// An admin who locks themselves out needs the provider to undo it.
		err = fmt.Errorf("%w: you cannot disable your own account", backend.ErrInvalid)
	} else {
		err = rq.t.SetDisabled(actor(r, rq), login, r.PostFormValue("disabled") == "1")
	}
	h.done(w, r, rq, "/web/admin/users?q="+url.QueryEscape(login), err)
}

func (h *Handler) userPassword(w http.ResponseWriter, r *http.Request, rq *request) {
	login, pw := r.PostFormValue("login"), r.PostFormValue("password")
	err := backend.CheckNewPassword(pw)
	if err == nil {
		err = rq.t.SetPassword(actor(r, rq), login, pw)
	}
	h.done(w, r, rq, "/web/admin/users?q="+url.QueryEscape(login), err)
}

func (h *Handler) adminGroups(w http.ResponseWriter, r *http.Request, rq *request) {
	h.render(w, "groups.html", h.page(rq, map[string]any{"Groups": rq.t.Groups(), "Roles": allRoles,
		"OK": r.URL.Query().Get("ok") != "", "Back": r.URL.RequestURI()}))
}

func (h *Handler) addGroup(w http.ResponseWriter, r *http.Request, rq *request) {
	ro, err := roles(r)
	if err == nil {
		err = rq.t.CreateGroup(actor(r, rq), r.PostFormValue("name"), ro)
	}
	h.done(w, r, rq, "/web/admin/groups", err)
}

func (h *Handler) groupMember(w http.ResponseWriter, r *http.Request, rq *request) {
	err := rq.t.SetGroupMember(actor(r, rq), r.PostFormValue("group"), strings.TrimSpace(r.PostFormValue("login")), r.PostFormValue("remove") == "")
	h.done(w, r, rq, "/web/admin/groups", err)
}

func (h *Handler) adminMailboxes(w http.ResponseWriter, r *http.Request, rq *request) {
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	all := rq.t.Mailboxes()
	if q != "" {
		all = slices.DeleteFunc(all, func(mb backend.Mailbox) bool {
			return !slices.ContainsFunc(mb.Addresses(), func(a string) bool { return strings.Contains(a, q) })
		})
	}
	mbs, pg := pageOf(rq.lang, all, int(atoi(r.URL.Query().Get("page"))), "/web/admin/mailboxes?q="+url.QueryEscape(q))
	h.render(w, "mailboxes.html", h.page(rq, map[string]any{"Mailboxes": mbs, "P": pg, "Q": q,
		"OK": r.URL.Query().Get("ok") != "", "Back": r.URL.RequestURI()}))
}

func (h *Handler) addMailbox(w http.ResponseWriter, r *http.Request, rq *request) {
	ctx := actor(r, rq)
	mb, err := rq.t.CreateMailbox(ctx, backend.MailboxSpec{Kind: backend.MailboxKind(r.PostFormValue("kind")),
		Address: r.PostFormValue("address"), Owner: strings.TrimSpace(r.PostFormValue("owner"))})
	if err == nil {
		// As the management API does: ingest creates mailboxes too, and
		// those are no administrative change, so CreateMailbox does not
		// audit.
		rq.t.Audit(ctx, rq.se.login, "mailbox-create", mailboxDetail(mb))
	}
	h.done(w, r, rq, "/web/admin/mailboxes", err)
}

func mailboxDetail(mb *backend.Mailbox) string {
	return fmt.Sprintf("%s kind %s aliases %v owner %q", mb.Address, mb.Kind, mb.Aliases, mb.Owner)
}

func (h *Handler) mailboxGrant(w http.ResponseWriter, r *http.Request, rq *request) {
	mb, who := r.PostFormValue("mailbox"), r.PostFormValue("who")
	var err error
	if r.PostFormValue("revoke") != "" {
		err = rq.t.Revoke(actor(r, rq), mb, who)
	} else {
		err = rq.t.Grant(actor(r, rq), mb, who)
	}
	h.done(w, r, rq, "/web/admin/mailboxes?q="+url.QueryEscape(mb), err)
}

func (h *Handler) mailboxAlias(w http.ResponseWriter, r *http.Request, rq *request) {
	mb := r.PostFormValue("mailbox")
	h.done(w, r, rq, "/web/admin/mailboxes?q="+url.QueryEscape(mb), rq.t.AddAlias(actor(r, rq), mb, r.PostFormValue("alias")))
}
