package mediatype

import (
	"errors"
	"fmt"
	"strings"
)

// maxLen bounds a declared type: the longest type allowed here is under 80
// bytes, and nothing legitimate needs parameters longer than that.
const maxLen = 255

// Parse reads one media type as RFC 9110 §8.3.1 writes it —
// type "/" subtype *( OWS ";" OWS [ name "=" ( token / quoted-string ) ] ) —
// and returns its essence ("type/subtype") in lower case. Parameters are
// checked and dropped, except that a text type may only name charset
// utf-8 (or its subset us-ascii). Everything else is an error: a comma (a
// browser may read "application/pdf, text/html" as text/html), spaces
// inside the type, non-ASCII or control characters, a repeated parameter,
// an unterminated quote. Browsers disagree on how to read such values, so
// the box refuses them rather than guess which reading a browser will pick.
func Parse(s string) (string, error) {
	if len(s) > maxLen {
		return "", fmt.Errorf("media type is %d bytes long; the limit is %d", len(s), maxLen)
	}
	v := strings.Trim(s, " \t")
	if v == "" {
		return "", errors.New("media type is empty")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= 0x7f || c < 0x20 && c != '\t' {
			return "", fmt.Errorf("%q is not a media type: it has a control or non-ASCII character", s)
		}
	}
	if inUnquoted(v, ',') {
		return "", fmt.Errorf("%q is not a single media type: a comma joins several, and browsers may pick any of them", s)
	}
	p := &parser{s: v}
	typ := p.token()
	if typ == "" || !p.eat('/') {
		return "", fmt.Errorf("%q is not a media type such as video/mp4 (type/subtype)", s)
	}
	sub := p.token()
	if sub == "" {
		return "", fmt.Errorf("%q is not a media type such as video/mp4 (type/subtype)", s)
	}
	essence := strings.ToLower(typ + "/" + sub)
	seen := map[string]bool{}
	for {
		p.ows()
		if p.done() {
			break
		}
		if !p.eat(';') {
			return "", fmt.Errorf("%q is not a media type: unexpected %q after %q", s, p.s[p.i:], p.s[:p.i])
		}
		p.ows()
		if p.done() || p.peek() == ';' {
			continue // an empty parameter, which the grammar allows
		}
		name := strings.ToLower(p.token())
		if name == "" || !p.eat('=') {
			return "", fmt.Errorf("%q is not a media type: a parameter must be name=value", s)
		}
		var value string
		if p.peek() == '"' {
			var ok bool
			if value, ok = p.quoted(); !ok {
				return "", fmt.Errorf("%q is not a media type: a quoted parameter value is not closed", s)
			}
		} else if value = p.token(); value == "" {
			return "", fmt.Errorf("%q is not a media type: parameter %s has no value", s, name)
		}
		if seen[name] {
			return "", fmt.Errorf("%q is not a media type: parameter %s appears twice", s, name)
		}
		seen[name] = true
		if name == "charset" && strings.HasPrefix(essence, "text/") {
			if cs := strings.ToLower(value); cs != "utf-8" && cs != "us-ascii" {
				return "", fmt.Errorf("%q names charset %s; the box serves text as UTF-8 only: convert the file to UTF-8 and write charset=utf-8 or nothing", s, value)
			}
		}
	}
	return essence, nil
}

// inUnquoted reports whether c occurs in s outside quoted strings.
func inUnquoted(s string, c byte) bool {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case quoted && s[i] == '\\':
			i++
		case s[i] == '"':
			quoted = !quoted
		case !quoted && s[i] == c:
			return true
		}
	}
	return false
}

type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i >= len(p.s) }

func (p *parser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *parser) eat(c byte) bool {
	if !p.done() && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) ows() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *parser) token() string {
	start := p.i
	for !p.done() && isTchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// quoted reads a quoted-string (the caller saw the opening quote) and
// returns its value without quotes and escapes.
func (p *parser) quoted() (string, bool) {
	p.i++ // the opening quote
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String(), true
		case '\\':
			if p.done() {
				return "", false
			}
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

// isTchar is RFC 9110's tchar: the characters of a token.
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
