package main

import (
	"context"
	"slices"

	"github.com/berth-dev/berth/discovery"
)

// discoveryConfig builds discovery's config from the file and the zero-config flags. ok=false means
// there is nothing to register or follow.
func (o *options) discoveryConfig(f *runFlags, metadataURI string) (discovery.Config, bool, error) {
	var dc discovery.Config
	dc.MetadataURI = metadataURI
	if o.file != nil { // checked by config.Load with discovery's Validate
		if c := o.file.Consul; c != nil {
			dc.Consul = *c
		}
		dc.Services = slices.Clone(o.file.Services)
		dc.Peers = slices.Clone(o.file.Peers)
	}
	if f.set["consul-mode"] {
		if f.consulMode != discovery.ModeAgent && f.consulMode != discovery.ModeCatalog {
			return dc, false, usageErr("-consul-mode: %q is not one of %q", f.consulMode, []string{discovery.ModeAgent, discovery.ModeCatalog})
		}
		dc.Consul.Mode = f.consulMode
	}
	// zero-config flags: a bad name is a usage error (64); discovery's Validate below applies the same ValidName
	// to config files (78)
	for _, fl := range [...]struct{ name, v string }{{"-service", f.service}, {"-peers-service", f.peersService}} {
		if fl.v != "" {
			if err := discovery.ValidName(fl.v); err != nil {
				return dc, false, usageErr("%s: %v", fl.name, err)
			}
		}
	}
	if f.service != "" || f.port != 0 {
		sc := discovery.ServiceConfig{Name: f.service, Port: f.port}
		add := func(c discovery.CheckConfig) {
			c.Interval = f.checkInterval
			sc.Checks = append(sc.Checks, c)
		}
		if f.checkHTTP != "" {
			add(discovery.CheckConfig{HTTP: f.checkHTTP})
		}
		if f.checkTCP != "" {
			add(discovery.CheckConfig{TCP: f.checkTCP})
		}
		if f.checkExec != "" {
			add(discovery.CheckConfig{Exec: []string{"/bin/sh", "-c", f.checkExec}})
		}
		if sc.Name == "" && metadataURI == "" {
			return dc, false, usageErr("-port needs -service when not running on ECS (on ECS the task family is the name)")
		}
		dc.Services = append(dc.Services, sc)
	} else if f.checkHTTP != "" || f.checkTCP != "" || f.checkExec != "" {
		return dc, false, usageErr("-check-http, -check-tcp and -check-exec need -service or -port")
	}
	if f.peersService != "" {
		dc.Peers = append(dc.Peers, discovery.PeersConfig{Name: "peers", Service: f.peersService, Env: f.peersEnv,
			Min: f.peersMin, Wait: f.peersWait})
	}
	if len(dc.Services) == 0 && len(dc.Peers) == 0 {
		return dc, false, nil
	}
	// Validate now so problems surface before anything starts. The exec runner (the supervisor) is wired in
	// by assemble afterwards, so a stand-in keeps every exec check from failing as "needs an exec runner".
	v := dc
	v.Exec = func(context.Context, []string) (int, []byte, error) { return 0, nil, nil }
	if err := v.Validate(); err != nil {
		return dc, false, &codedError{code: exitConfig, msg: err.Error()}
	}
	return dc, true, nil
}
