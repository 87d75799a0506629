package control

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"strangler/config"
)

// Tokens are the admin tokens of the current configuration. Reloads swap
// them; requests read them without a lock.
type Tokens struct {
	list atomic.Pointer[[]config.Token]
}

// Set replaces the tokens.
func (t *Tokens) Set(list []config.Token) { t.list.Store(&list) }

// Configured reports whether any token is set: without one, nobody can use
// the admin API or the status page.
func (t *Tokens) Configured() bool {
	list := t.list.Load()
	return list != nil && len(*list) > 0
}

// lookup returns the token presented, comparing in constant time against
// every configured token so that the time taken says nothing about how
// close a guess was. It compares their SHA-256 sums, all of one length:
// subtle.ConstantTimeCompare answers at once when the lengths differ,
// which told a guesser each token's length.
func (t *Tokens) lookup(presented string) (config.Token, bool) {
	list := t.list.Load()
	if list == nil || presented == "" {
		return config.Token{}, false
	}
	sum := sha256.Sum256([]byte(presented))
	var match config.Token
	found := 0
	for _, tok := range *list {
		want := sha256.Sum256([]byte(tok.Token))
		if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
			match, found = tok, 1
		}
	}
	return match, found == 1
}

// byName returns the token named name, if the configuration has one.
func (t *Tokens) byName(name string) (config.Token, bool) {
	list := t.list.Load()
	if list == nil {
		return config.Token{}, false
	}
	for _, tok := range *list {
		if tok.Name == name {
			return tok, true
		}
	}
	return config.Token{}, false
}

// role is the role of the token named name; "" (allowed nothing) when
// there is no such token any more.
func (t *Tokens) role(name string) config.Role {
	tok, _ := t.byName(name)
	return tok.Role
}

// Proxies are the admin listener's trusted proxies
// (admin.trusted_proxies). Reloads swap them; requests read them without
// a lock.
type Proxies struct {
	list atomic.Pointer[[]config.Prefix]
}

// Set replaces the proxies.
func (p *Proxies) Set(list []config.Prefix) { p.list.Store(&list) }

func (p *Proxies) trusted(a netip.Addr) bool {
	if p == nil {
		return false
	}
	list := p.list.Load()
	if list == nil {
		return false
	}
	for _, pr := range *list {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// client is the address of r's client: its peer's, unless the peer is a
// trusted proxy; then the right-most X-Forwarded-For address that is not
// one, which the first trusted proxy saw connect. What a client writes
// into X-Forwarded-For itself sits to the left of that and is never
// read, so a client cannot pick its address; a value that is not an
// address stops the walk at the proxy that passed it on.
func (p *Proxies) client(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !p.trusted(addr.Unmap()) {
		return host
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		addr = a.Unmap()
		if !p.trusted(addr) {
			break
		}
	}
	return addr.String()
}

// https says whether r's browser reached the admin listener over TLS:
// r came over TLS, or from a trusted proxy whose X-Forwarded-Proto (the
// right-most value, the one it wrote) says https. A load balancer that
// ends TLS in front of the listener then still gets Secure cookies.
func (p *Proxies) https(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !p.trusted(addr.Unmap()) {
		return false
	}
	values := r.Header.Values("X-Forwarded-Proto")
	if len(values) == 0 {
		return false
	}
	last := values[len(values)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(last), "https")
}

// clientAddr is the address of r's client (Proxies.client).
func (a *admin) clientAddr(r *http.Request) string { return a.Proxies.client(r) }

// bearer returns the token of an "Authorization: Bearer …" header. A
// token in the query string is never accepted: it would end up in access
// logs and browser history.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// notJSON refuses a change whose body is not declared JSON as decode
// reads it: application/json (which browsers cannot send cross-site
// without a preflight, which the admin API never grants), in UTF-8, not
// compressed. A gzip body was refused as "not valid UTF-8", and one in a
// coding whose bytes happen to be UTF-8 was read as the JSON it is not.
// Two Content-Type lines are refused, as the public listener refuses
// them: which one counts is each reader's choice, and a proxy in front
// that reads the last would take for text a body applied as JSON.
func notJSON(r *http.Request) error {
	if len(r.Header.Values("Content-Type")) > 1 {
		return apiError(http.StatusUnsupportedMediaType, "send one Content-Type header (application/json); this request has several")
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return apiError(http.StatusUnsupportedMediaType, "changes take a JSON body (Content-Type: application/json)")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return apiError(http.StatusUnsupportedMediaType, "changes take a JSON body in UTF-8, not another charset")
	}
	for _, v := range r.Header.Values("Content-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return apiError(http.StatusUnsupportedMediaType, "changes take a JSON body as it is, not compressed or otherwise encoded (Content-Encoding)")
			}
		}
	}
	return nil
}

// refused audits a change the admin API or the status page turned away,
// and any action a token's role does not allow, as a "denied" entry
// naming who (the token's name, or unauthenticated; never the token),
// what and why, like a flip a gate refused. Only the refusals that say
// something about who tried are audited: a wrong or expired token (401),
// not allowed (403), a conflict with the current state (409), a stale
// version (412), no version at all (428). Malformed requests and
// lockouts are not, nor changes of routes or repairs that do not exist,
// nor a caller who presented nothing (no token, no session, a cross-site
// request without a valid token): anyone could fill the log with those,
// and nothing rations them as the lockout rations wrong tokens; their
// security line is their record. A valid token reaching above its role
// is audited whatever it names, under its own name; the endpoint's
// pattern then stands for the path, to keep made-up names out of the log.
func (a *admin) refused(r *http.Request, actor string, err error) {
	status, msg := statusFor(err)
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusConflict,
		http.StatusPreconditionFailed, http.StatusPreconditionRequired:
	default:
		return
	}
	if actor == "" && !errors.Is(err, errWrongToken) {
		return
	}
	ctx, cancel := timeout(r)
	defer cancel()
	what := r.Method + " " + r.URL.Path
	route, ok := a.routeOf(ctx, r)
	if role := (*roleError)(nil); !ok && errors.As(err, &role) {
		route, what, ok = "", r.Pattern, true
	}
	if !ok {
		return
	}
	if actor == "" {
		actor = "unauthenticated"
	}
	a.Flags.Deny(ctx, route, actor, fmt.Sprintf("%s refused (%d): %s; from %s", what, status, msg, a.clientAddr(r)))
}

// routeOf is the route a change is about: the route it names, or the
// route of the repair or change request it names; false if there is no
// such route, repair or request.
func (a *admin) routeOf(ctx context.Context, r *http.Request) (string, bool) {
	if name := r.PathValue("name"); name != "" {
		_, ok := a.Flags.Get(name)
		return name, ok
	}
	if r.PathValue("change") != "" && a.Rollouts != nil {
		id, err := changeID(r)
		if err != nil {
			return "", false
		}
		c, err := a.Rollouts.Change(ctx, id)
		return c.Route, err == nil
	}
	if id := r.PathValue("id"); id != "" {
		rep, err := a.Repairs.GetRepair(ctx, id, false)
		return rep.Route, err == nil
	}
	return "", false
}
