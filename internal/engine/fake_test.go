package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

// fakeDocker is an in-memory dockerAPI. It records calls, serves lists
// from its maps, and streams the events the test sends on its events
// channel. All fields are guarded by mu.
type fakeDocker struct {
	mu         sync.Mutex
	calls      []string
	containers map[string]containerSummary
	images     map[string]imageInspectResponse
	volumes    map[string]volumeResponse
	sysTime    time.Time

	pingErr, infoErr, listErr error
	// panicOnRefresh makes the per-container list (an event refresh) panic.
	panicOnRefresh bool

	events    chan eventMessage // sent to the open stream
	streamErr chan error        // ends the open stream with this error
	streamEnd chan struct{}     // closed when the client's event goroutine ended
	closed    int
}

func newFakeDocker() *fakeDocker {
	return &fakeDocker{
		containers: map[string]containerSummary{},
		images:     map[string]imageInspectResponse{},
		volumes:    map[string]volumeResponse{},
		sysTime:    time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		events:     make(chan eventMessage),
		streamErr:  make(chan error, 1),
	}
}

func (f *fakeDocker) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeDocker) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeDocker) Ping(context.Context) (pingResponse, error) {
	f.record("Ping")
	f.mu.Lock()
	defer f.mu.Unlock()
	return pingResponse{APIVersion: "1.41"}, f.pingErr
}

func (f *fakeDocker) NegotiateAPIVersionPing(pingResponse) {}
func (f *fakeDocker) ClientVersion() string                { return "1.41" }

func (f *fakeDocker) Info(context.Context) (infoResponse, error) {
	f.record("Info")
	f.mu.Lock()
	defer f.mu.Unlock()
	return infoResponse{SystemTime: f.sysTime.Format(time.RFC3339Nano), ServerVersion: "20.10.24"}, f.infoErr
}

func (f *fakeDocker) ContainerList(_ context.Context, o containerListOptions) ([]containerSummary, error) {
	ids := o.Filters["id"]
	if len(ids) == 0 {
		f.record("ContainerList")
	} else {
		f.record("ContainerList id=" + ids[0])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(ids) > 0 && f.panicOnRefresh {
		panic("fake: refresh panics")
	}
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []containerSummary
	for id, c := range f.containers {
		if len(ids) == 0 || id == ids[0] {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeDocker) ImageList(context.Context, imageListOptions) ([]imageSummary, error) {
	f.record("ImageList")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []imageSummary
	for _, r := range f.images {
		out = append(out, imageSummary{ID: r.ID, RepoTags: r.RepoTags, Size: r.Size})
	}
	return out, nil
}

func (f *fakeDocker) ImageInspect(_ context.Context, ref string) (imageInspectResponse, error) {
	f.record("ImageInspect " + ref)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.images {
		if r.ID == ref || slices.Contains(r.RepoTags, ref) {
			return r, nil
		}
	}
	return imageInspectResponse{}, cerrdefs.ErrNotFound
}

func (f *fakeDocker) VolumeList(context.Context, volumeListOptions) (volumeListResponse, error) {
	f.record("VolumeList")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out volumeListResponse
	for _, v := range f.volumes {
		out.Volumes = append(out.Volumes, v)
	}
	return out, nil
}

func (f *fakeDocker) VolumeInspect(_ context.Context, name string) (volumeResponse, error) {
	f.record("VolumeInspect " + name)
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[name]
	if !ok {
		return volumeResponse{}, cerrdefs.ErrNotFound
	}
	return v, nil
}

// Events behaves like the Docker client's: a goroutine forwards messages
// until ctx ends or the stream fails, then sends the error and closes errs.
func (f *fakeDocker) Events(ctx context.Context, o eventsOptions) (<-chan eventMessage, <-chan error) {
	since := ""
	if !o.Since.IsZero() {
		since = formatSince(o.Since)
	}
	f.record("Events since=" + since)
	msgs := make(chan eventMessage)
	errs := make(chan error, 1)
	end := make(chan struct{})
	f.mu.Lock()
	f.streamEnd = end
	f.mu.Unlock()
	go func() {
		defer close(end)
		defer close(errs)
		for {
			select {
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			case err := <-f.streamErr:
				errs <- err
				return
			case m := <-f.events:
				select {
				case msgs <- m:
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				}
			}
		}
	}()
	return msgs, errs
}

func (f *fakeDocker) Close() error {
	f.record("Close")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

// StreamEnded returns the channel closed when the last stream's goroutine ended.
func (f *fakeDocker) StreamEnded() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streamEnd
}

func (f *fakeDocker) addContainer(id, name, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[id] = containerSummary{ID: id, Names: []string{"/" + name}, Image: "img", State: state, Created: 1700000000}
}

func (f *fakeDocker) setImage(id string, tags ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[id] = imageInspectResponse{ID: id, RepoTags: tags, Size: 42, Created: "2023-11-14T22:13:20Z"}
}

func (f *fakeDocker) set(fn func(f *fakeDocker)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// phaseLog collects phases; its channel has room for many so OnPhase never blocks.
type phaseLog struct {
	ch chan Phase
}

func newPhaseLog() *phaseLog { return &phaseLog{ch: make(chan Phase, 1024)} }

func (p *phaseLog) on(ph Phase) { p.ch <- ph }

// next waits for the next phase of state want, skipping others, up to timeout.
func (p *phaseLog) next(want PhaseState, timeout time.Duration) (Phase, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case ph := <-p.ch:
			if ph.State == want {
				return ph, nil
			}
		case <-t.C:
			return Phase{}, fmt.Errorf("no %s phase within %s", want, timeout)
		}
	}
}

var errBoom = errors.New("boom")
