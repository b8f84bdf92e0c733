package pull

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server/answer"
)

// APIPrefix is where Routes mounts the management endpoints.
const APIPrefix = "/api/v1/tenants/{t}/pull"

// Routes registers the management endpoints on mux; the caller puts them
// behind the provider-token check of the management API.
//
//	GET    /api/v1/tenants/{t}/pull/profiles          list profiles with their state
//	PUT    /api/v1/tenants/{t}/pull/profiles/{p}      create or replace (Profile JSON)
//	GET    /api/v1/tenants/{t}/pull/profiles/{p}      profile, state and progress of a run under way
//	DELETE /api/v1/tenants/{t}/pull/profiles/{p}      delete (the archived mail stays)
//	POST   /api/v1/tenants/{t}/pull/profiles/{p}/run  run now; answers the Report
//
// A run answers 200 with its Report even if it failed (Report.Error says
// why); 4xx answers are requests that did not lead to a run.
func (s *Puller) Routes(mux *http.ServeMux) {
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
		mux.HandleFunc(pattern, answer.Handler(s.log, fn))
	}
	h("GET "+APIPrefix+"/profiles", func(w http.ResponseWriter, r *http.Request) error {
		ps, err := s.Profiles(r.Context(), r.PathValue("t"))
		if err != nil {
			return err
		}
		answer.JSON(w, http.StatusOK, ps)
		return nil
	})
	h("GET "+APIPrefix+"/profiles/{p}", func(w http.ResponseWriter, r *http.Request) error {
		in, err := s.Profile(r.Context(), r.PathValue("t"), r.PathValue("p"))
		if err != nil {
			return err
		}
		answer.JSON(w, http.StatusOK, in)
		return nil
	})
	h("PUT "+APIPrefix+"/profiles/{p}", func(w http.ResponseWriter, r *http.Request) error {
		var p Profile
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return fmt.Errorf("%w: request body: %v", backend.ErrInvalid, err)
		}
		name := r.PathValue("p")
		if p.Name != "" && p.Name != name {
			return fmt.Errorf("%w: profile name %q in the body differs from %q in the path", backend.ErrInvalid, p.Name, name)
		}
		p.Name = name
		if err := s.PutProfile(r.Context(), r.PathValue("t"), p); err != nil {
			return err
		}
		p.Password = ""
		answer.JSON(w, http.StatusOK, p)
		return nil
	})
	h("DELETE "+APIPrefix+"/profiles/{p}", func(w http.ResponseWriter, r *http.Request) error {
		if err := s.DeleteProfile(r.Context(), r.PathValue("t"), r.PathValue("p")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("POST "+APIPrefix+"/profiles/{p}/run", func(w http.ResponseWriter, r *http.Request) error {
		rep, err := s.Run(r.Context(), r.PathValue("t"), r.PathValue("p"))
		if rep == nil {
			return err
		}
		answer.JSON(w, http.StatusOK, rep)
		return nil
	})
}
