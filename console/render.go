package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// view is what every page's template gets.
type view struct {
	Title  string
	Nav    string // the active navigation entry
	CSRF   string
	Label  string // the signed-in key's label
	Tenant string
	Flash  string // a success message
	Error  string // a failure message
	Data   any
}

// pageNames are the templates, each rendered inside layout.html.
var pageNames = []string{"signin", "error", "overview", "policy", "users", "audit", "operations"}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"signal": signalWords,
	"event":  eventWords,
	"join":   strings.Join,
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: templates: %w", err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes a page; a template error is logged and answered 500.
func (c *Console) render(w http.ResponseWriter, status int, name string, v view) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout.html", v); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fragment writes one named template of a page (the audit log's rows).
func (c *Console) fragment(w http.ResponseWriter, page, name string, data any) {
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, name, data); err != nil {
		c.log.Error("console: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = buf.WriteTo(w)
}

// fail answers an error page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, status, "error", view{Title: http.StatusText(status), Error: msg})
}

// internal logs an unexpected error (never a key or a session id: neither
// reaches an error) and answers 500.
func (c *Console) internal(w http.ResponseWriter, r *http.Request, err error) {
	c.log.ErrorContext(r.Context(), "console: internal error", "path", r.URL.Path, "err", err)
	c.fail(w, r, http.StatusInternalServerError, "Something went wrong on our side. Try again in a moment.")
}

// base is the view of a signed-in page.
func (c *Console) base(r *http.Request, s session, nav, title string) view {
	v := view{Title: title, Nav: nav, CSRF: s.CSRF, Label: s.Label, Tenant: s.Tenant}
	if t, err := c.eng.Tenants.Tenant(r.Context(), s.Tenant); err == nil {
		v.Tenant = t.Name
	}
	return v
}
