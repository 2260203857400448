package notify

import (
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"slices"
	"strings"
	texttemplate "text/template"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	"github.com/stepup-auth/stepup/message"
)

// templateFS holds templates/<locale>/…; see the package documentation.
//
//go:embed templates
var templateFS embed.FS

// fallbackLocale is complete: every other locale borrows what it lacks from it.
const fallbackLocale = "en"

// mailTemplates renders one kind of mail (an event type for one audience).
type mailTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template // executes "user" or "manager"
	html    *htmltemplate.Template // executes "user" or "manager"
}

// localeTemplates are the mails of one locale, keyed by templateName.
type localeTemplates struct {
	tag     language.Tag
	country func(code string) string
	mails   map[string]*mailTemplates
}

// templateName is the file stem of the mail for event type t and an
// audience: "<type>" for the type's first audience, "<type>.manager" for the
// managers' copy of an event that also goes to the user.
func templateName(t message.EventType, managers bool) string {
	if managers && UserFacing(t) {
		return string(t) + ".manager"
	}
	return string(t)
}

// frame is the layout template a mail executes.
func frame(managers bool) string {
	if managers {
		return "manager"
	}
	return "user"
}

// loadTemplates parses every locale under root in fsys. The fallback locale
// must have every file; other locales borrow missing files from it.
func loadTemplates(fsys fs.FS, root string) (map[string]*localeTemplates, error) {
	entries, err := fs.ReadDir(fsys, root)
	if err != nil {
		return nil, fmt.Errorf("notify: reading templates: %w", err)
	}
	var locales []string
	for _, e := range entries {
		if e.IsDir() {
			locales = append(locales, e.Name())
		}
	}
	if !slices.Contains(locales, fallbackLocale) {
		return nil, fmt.Errorf("notify: templates: no %q locale", fallbackLocale)
	}

	read := func(locale, name string) (string, error) {
		b, err := fs.ReadFile(fsys, path.Join(root, locale, name))
		if errors.Is(err, fs.ErrNotExist) && locale != fallbackLocale {
			b, err = fs.ReadFile(fsys, path.Join(root, fallbackLocale, name))
		}
		if err != nil {
			return "", fmt.Errorf("notify: template %s/%s: %w", locale, name, err)
		}
		return string(b), nil
	}

	out := make(map[string]*localeTemplates, len(locales))
	for _, locale := range locales {
		tag, err := language.Parse(locale)
		if err != nil {
			return nil, fmt.Errorf("notify: template locale %q: %w", locale, err)
		}
		country := countryNamer(tag)
		lt := &localeTemplates{tag: tag, country: country, mails: map[string]*mailTemplates{}}
		funcs := templateFuncs(country)

		layoutText, err := read(locale, "layout.txt")
		if err != nil {
			return nil, err
		}
		layoutHTML, err := read(locale, "layout.html")
		if err != nil {
			return nil, err
		}
		baseText, err := texttemplate.New("layout.txt").Option("missingkey=zero").Funcs(funcs).Parse(layoutText)
		if err != nil {
			return nil, fmt.Errorf("notify: template %s/layout.txt: %w", locale, err)
		}
		baseHTML, err := htmltemplate.New("layout.html").Option("missingkey=zero").Funcs(htmltemplate.FuncMap(funcs)).Parse(layoutHTML)
		if err != nil {
			return nil, fmt.Errorf("notify: template %s/layout.html: %w", locale, err)
		}

		for _, a := range audiences {
			for _, managers := range []bool{false, true} {
				if (managers && a.to&toManagers == 0) || (!managers && a.to&toUser == 0) {
					continue
				}
				name := templateName(a.typ, managers)
				mt, err := parseMail(locale, name, read, funcs, baseText, baseHTML)
				if err != nil {
					return nil, err
				}
				lt.mails[name] = mt
			}
		}
		out[strings.ToLower(locale)] = lt
	}
	return out, nil
}

// parseMail parses one mail's three files on clones of the locale's layouts.
func parseMail(locale, name string, read func(locale, name string) (string, error),
	funcs texttemplate.FuncMap, baseText *texttemplate.Template, baseHTML *htmltemplate.Template,
) (*mailTemplates, error) {
	subj, err := read(locale, name+".subject.txt")
	if err != nil {
		return nil, err
	}
	body, err := read(locale, name+".txt")
	if err != nil {
		return nil, err
	}
	bodyHTML, err := read(locale, name+".html")
	if err != nil {
		return nil, err
	}

	mt := &mailTemplates{}
	if mt.subject, err = texttemplate.New(name + ".subject.txt").Option("missingkey=zero").Funcs(funcs).Parse(subj); err != nil {
		return nil, fmt.Errorf("notify: template %s/%s.subject.txt: %w", locale, name, err)
	}
	if mt.text, err = baseText.Clone(); err != nil {
		return nil, err
	}
	if _, err = mt.text.New("body").Parse(body); err != nil {
		return nil, fmt.Errorf("notify: template %s/%s.txt: %w", locale, name, err)
	}
	if mt.html, err = baseHTML.Clone(); err != nil {
		return nil, err
	}
	if _, err = mt.html.New("body").Parse(bodyHTML); err != nil {
		return nil, fmt.Errorf("notify: template %s/%s.html: %w", locale, name, err)
	}
	return mt, nil
}

// countryNamer names ISO 3166-1 codes in the language of tag; a code it
// does not know is returned as given.
func countryNamer(tag language.Tag) func(code string) string {
	regions := display.Regions(tag)
	return func(code string) string {
		r, err := language.ParseRegion(strings.TrimSpace(code))
		if err != nil {
			return code
		}
		if name := regions.Name(r); name != "" {
			return name
		}
		return code
	}
}

// templateFuncs are the functions every template of one locale may call.
func templateFuncs(country func(string) string) texttemplate.FuncMap {
	return texttemplate.FuncMap{
		// country names an ISO 3166-1 code in the locale's language.
		"country": country,
		// except lists a map's entries but the given keys, sorted by key:
		// the counts of a digest that no sentence names.
		"except": func(m map[string]string, keys ...string) []entry {
			var out []entry
			for k, v := range m {
				if !slices.Contains(keys, k) {
					out = append(out, entry{Key: k, Value: v})
				}
			}
			slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.Key, b.Key) })
			return out
		},
		// words turns a snake_case key into words: sms_sent → sms sent.
		"words": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	}
}

// entry is a key and value of Event.Details.
type entry struct {
	Key, Value string
}
