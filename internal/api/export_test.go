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

// StreamsForTest is how many connections hold a stream slot.
func (s *Server) StreamsForTest() int {
	s.lim.mu.Lock()
	defer s.lim.mu.Unlock()
	return s.lim.streams
}

// ParkedForTest is how many streams are parked with the broadcast.
func (s *Server) ParkedForTest() int {
	s.bc.mu.Lock()
	defer s.bc.mu.Unlock()
	return len(s.bc.parked)
}

// BroadcastingForTest says whether the broadcast has its first batch:
// streams may park from then on.
func (s *Server) BroadcastingForTest() bool {
	s.bc.mu.Lock()
	defer s.bc.mu.Unlock()
	return s.bc.running && s.bc.known
}
