package api

import "net/http"

// RoutesForTest returns the handler table without the peer check (which
// needs a real Unix connection), for FuzzHandlers.
func (s *Server) RoutesForTest() http.Handler { return http.HandlerFunc(s.dispatch) }

// PlainConnsForTest is how many connections hold a plain slot.
func (s *Server) PlainConnsForTest() int {
	s.lim.mu.Lock()
	defer s.lim.mu.Unlock()
	return s.lim.conns
}
