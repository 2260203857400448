package app

import (
	"context"
	"fmt"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/risk"
	"github.com/stepup-auth/stepup/risk/iplist"
)

// openIPLists loads risk.ip_lists, failing on a missing or bad file with
// the list and the line, and watches the files for changes until Close.
// Without lists it returns nil, which the engine takes as none.
func (a *App) openIPLists(cfg config.Config) (engine.IPLists, error) {
	if len(cfg.Risk.IPLists) == 0 {
		return nil, nil
	}
	specs := make([]iplist.Spec, len(cfg.Risk.IPLists))
	for i, l := range cfg.Risk.IPLists {
		specs[i] = iplist.Spec{Field: fmt.Sprintf("risk.ip_lists[%d]", i), Name: l.Name, File: l.File,
			Action: risk.ListAction(l.Action), Factor: l.Factor}
	}
	lists, err := iplist.Load(specs)
	if err != nil {
		return nil, err
	}
	every := cfg.Risk.IPListsPoll
	if every <= 0 {
		every = config.Default().Risk.IPListsPoll
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	log := a.Log.With("component", "ip_lists")
	go func() {
		defer close(done)
		lists.Watch(ctx, every, func(reloaded []iplist.Reload, err error) {
			for _, r := range reloaded {
				log.Info("ip list reloaded", "name", r.Name, "file", r.File, "entries", r.Entries)
			}
			if err != nil {
				log.Error("ip list not reloaded, the last good list stays", "err", err)
			}
		})
	}()
	a.closers = append(a.closers, func() { cancel(); <-done })
	return lists, nil
}
