package dirsync

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server/answer"
)

// APIPrefix is where Routes mounts the management endpoints.
const APIPrefix = "/api/v1/tenants/{t}/dirsync"

// Routes registers the management endpoints on mux; the caller puts them
// behind the provider-token check of the management API.
//
//	GET    /api/v1/tenants/{t}/dirsync/profiles             list profiles
//	PUT    /api/v1/tenants/{t}/dirsync/profiles/{p}         create or replace (Profile JSON)
//	GET    /api/v1/tenants/{t}/dirsync/profiles/{p}         profile and status of its last run
//	DELETE /api/v1/tenants/{t}/dirsync/profiles/{p}         delete, releasing its domains
//	POST   /api/v1/tenants/{t}/dirsync/profiles/{p}/run     run one profile (?dry_run=true)
//	POST   /api/v1/tenants/{t}/dirsync/run                  run every profile of the tenant (?dry_run=true)
//
// A run answers 200 with its Report even if the run failed (Report.Error
// says why; nothing was changed); 4xx answers are requests that did not
// lead to a run.
func (s *Syncer) Routes(mux *http.ServeMux) {
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
		mux.HandleFunc(pattern, answer.Handler(s.log, fn))
	}
	h("GET "+APIPrefix+"/profiles", s.apiList)
	h("PUT "+APIPrefix+"/profiles/{p}", s.apiPut)
	h("GET "+APIPrefix+"/profiles/{p}", s.apiGet)
	h("DELETE "+APIPrefix+"/profiles/{p}", s.apiDelete)
	h("POST "+APIPrefix+"/profiles/{p}/run", s.apiRunOne)
	h("POST "+APIPrefix+"/run", s.apiRunAll)
}

// ProfileInfo is a profile (without password) with its last run.
type ProfileInfo struct {
	Profile
	Status *Status `json:"status,omitempty"`
}

func (s *Syncer) apiList(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.Profiles(r.Context(), r.PathValue("t"))
	if err != nil {
		return err
	}
	answer.JSON(w, http.StatusOK, ps)
	return nil
}

func (s *Syncer) apiGet(w http.ResponseWriter, r *http.Request) error {
	ctx, tenant, name := r.Context(), r.PathValue("t"), r.PathValue("p")
	p, err := s.Profile(ctx, tenant, name)
	if err != nil {
		return err
	}
	st, err := s.Status(ctx, tenant, name)
	if err != nil {
		return err
	}
	answer.JSON(w, http.StatusOK, ProfileInfo{Profile: *p, Status: st})
	return nil
}

func (s *Syncer) apiPut(w http.ResponseWriter, r *http.Request) error {
	var p Profile
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("%w: request body: %v", answer.ErrBadRequest, err)
	}
	name := r.PathValue("p")
	if p.Name != "" && p.Name != name {
		return fmt.Errorf("%w: profile name %q in the body differs from %q in the path", answer.ErrBadRequest, p.Name, name)
	}
	p.Name = name
	if err := s.PutProfile(r.Context(), r.PathValue("t"), p); err != nil {
		return err
	}
	p.BindPassword = ""
	answer.JSON(w, http.StatusOK, p)
	return nil
}

func (s *Syncer) apiDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.DeleteProfile(r.Context(), r.PathValue("t"), r.PathValue("p")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func dryRun(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("dry_run")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: dry_run=%q: want true or false", answer.ErrBadRequest, v)
	}
	return b, nil
}

func (s *Syncer) apiRunOne(w http.ResponseWriter, r *http.Request) error {
	dry, err := dryRun(r)
	if err != nil {
		return err
	}
	rep, err := s.Run(r.Context(), r.PathValue("t"), r.PathValue("p"), dry)
	if rep == nil {
		return err
	}
	answer.JSON(w, http.StatusOK, rep)
	return nil
}

func (s *Syncer) apiRunAll(w http.ResponseWriter, r *http.Request) error {
	dry, err := dryRun(r)
	if err != nil {
		return err
	}
	ctx, tenant := r.Context(), r.PathValue("t")
	ps, err := s.Profiles(ctx, tenant)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return fmt.Errorf("tenant %q has no directory profile: %w", tenant, backend.ErrNotFound)
	}
	reports := make([]*Report, 0, len(ps))
	for _, p := range ps {
		rep, err := s.Run(ctx, tenant, p.Name, dry)
		if rep == nil {
			return err
		}
		reports = append(reports, rep)
	}
	answer.JSON(w, http.StatusOK, reports)
	return nil
}
