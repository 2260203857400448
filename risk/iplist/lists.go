package iplist

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go4.org/netipx"

	"github.com/stepup-auth/stepup/risk"
)

// Spec is one list as configured.
type Spec struct {
	// Field names the list in errors: "risk.ip_lists[0]".
	Field string
	// Name is the list's name, the ip_list signal's detail.
	Name string
	// File is the path of the list file.
	File string
	// Action is what the list does to a login from an address it holds.
	Action risk.ListAction
	// Factor is a score list's factor (0: risk.DefaultListFactor).
	Factor float64
}

// Lists are the loaded lists; they are safe for concurrent use.
type Lists struct {
	lists []*list
	mu    sync.Mutex // serializes Refresh
}

type list struct {
	spec    Spec
	set     atomic.Pointer[netipx.IPSet]
	stamp   stamp // the file as last read (or tried), under Lists.mu
	pending stamp // a change seen by the last Refresh, not read yet
}

// stamp identifies a version of a file cheaply.
type stamp struct {
	mod     time.Time
	size    int64
	missing bool
}

// Load reads every list; any missing or bad file is an error naming the
// list, the file and the bad lines: "risk.ip_lists[0] (tor): /path line
// 12: not an IP or CIDR: "…"".
func Load(specs []Spec) (*Lists, error) {
	ls := &Lists{}
	var errs []error
	for _, s := range specs {
		l := &list{spec: s}
		if _, err := l.read(); err != nil {
			errs = append(errs, err)
		}
		ls.lists = append(ls.lists, l)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ls, nil
}

// Lookup returns the lists that hold ip, in configuration order.
func (ls *Lists) Lookup(ip netip.Addr) []risk.ListHit {
	if ls == nil {
		return nil
	}
	var hits []risk.ListHit
	for _, l := range ls.lists {
		if set := l.set.Load(); set != nil && set.Contains(ip) {
			hits = append(hits, risk.ListHit{Name: l.spec.Name, Action: l.spec.Action, Factor: l.spec.Factor})
		}
	}
	return hits
}

// Reload is one list file that Refresh read again.
type Reload struct {
	Name    string
	File    string
	Entries int
}

// Refresh re-reads the files whose modification time or size changed
// since they were last read and then stayed the same from one call to the
// next: a file being written in place (not renamed into place) is read
// once the writer is done, not half-written. A file that is now missing
// or bad keeps its last good list; its error is returned once per change
// of the file, not at every call.
func (ls *Lists) Refresh() ([]Reload, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var (
		done []Reload
		errs []error
	)
	for _, l := range ls.lists {
		cur := statOf(l.spec.File)
		if cur == l.stamp {
			continue
		}
		if cur != l.pending {
			l.pending = cur // settle: read at the next call if unchanged
			continue
		}
		n, err := l.read()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, Reload{Name: l.spec.Name, File: l.spec.File, Entries: n})
	}
	return done, errors.Join(errs...)
}

// Watch calls Refresh every interval until ctx ends, reporting what it
// did through report (reloads, then the error, either may be empty).
func (ls *Lists) Watch(ctx context.Context, every time.Duration, report func([]Reload, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if done, err := ls.Refresh(); len(done) > 0 || err != nil {
				report(done, err)
			}
		}
	}
}

// read parses the file and, when it is good, replaces the list. The stamp
// is taken before the read, so a write during it is seen at the next
// Refresh.
func (l *list) read() (int, error) {
	l.stamp = statOf(l.spec.File)
	f, err := os.Open(l.spec.File)
	if err != nil {
		return 0, fmt.Errorf("%s (%s): %w", l.spec.Field, l.spec.Name, err)
	}
	defer f.Close()
	set, n, err := Parse(f)
	if err != nil {
		// One line per bad line, each naming the list and the file.
		var out []error
		for _, e := range unjoin(err) {
			out = append(out, fmt.Errorf("%s (%s): %s %w", l.spec.Field, l.spec.Name, l.spec.File, e))
		}
		return 0, errors.Join(out...)
	}
	l.set.Store(set)
	return n, nil
}

func unjoin(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		return u.Unwrap()
	}
	return []error{err}
}

func statOf(path string) stamp {
	st, err := os.Stat(path)
	if err != nil {
		return stamp{missing: true}
	}
	return stamp{mod: st.ModTime(), size: st.Size()}
}
