package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/mailvault/mailvault/server"
)

// profileCmds are the sub-commands pull and dirsync share on a tenant's
// profiles (below tenantPath(tenant, area, "profiles")): profiles, show,
// put and delete, beside their own run.
type profileCmds struct {
	c            *server.Client
	tenant, area string
	// saved and deleted are printed after put and delete; %[1]s is the
	// profile, %[2]s the tenant.
	saved, deleted string
}

// run runs op, any sub-command but run.
func (p profileCmds) run(op string, pos []string, file string) error {
	switch op {
	case "profiles":
		return present[any](p.c, true, "GET", tenantPath(p.tenant, p.area, "profiles"), nil, nil)
	case "show", "put", "delete":
	default:
		return fmt.Errorf("unknown sub-command %q: want run, profiles, show, put or delete", op)
	}
	if err := need(pos, 1, "profile name"); err != nil {
		return err
	}
	path := tenantPath(p.tenant, p.area, "profiles", pos[0])
	switch op {
	case "show":
		return present[any](p.c, true, "GET", path, nil, nil)
	case "put":
		if file == "" {
			return fmt.Errorf("-file PROFILE.json is required")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var prof json.RawMessage
		if err := json.Unmarshal(b, &prof); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := p.c.Do("PUT", path, prof, nil); err != nil {
			return err
		}
		fmt.Printf(p.saved+"\n", pos[0], p.tenant)
	default:
		if err := p.c.Do("DELETE", path, nil, nil); err != nil {
			return err
		}
		fmt.Printf(p.deleted+"\n", pos[0], p.tenant)
	}
	return nil
}
