package daemon

import (
	"context"
	"errors"
	"sync"

	"github.com/rdd-project/rdd/internal/vm"
)

// fakeDriver is an in-memory vm.Driver that records calls and can crash or fail.
type fakeDriver struct {
	mu         sync.Mutex
	created    bool
	running    bool
	pid        int
	hash       string
	exited     chan struct{}
	calls      []string
	startErr   error
	createErr  error
	deleteErr  error
	inspectErr error
	// boots makes Start only begin a boot, as a VM's does; finishBoot ends it.
	boots  bool
	booted chan error
}

// finishBoot ends the boot the last Start began, with err (nil: usable).
func (f *fakeDriver) finishBoot(err error) {
	f.mu.Lock()
	ch := f.booted
	f.booted = nil
	if err != nil {
		f.running = false // a VM that never booted is not left running
	}
	f.mu.Unlock()
	ch <- err
}

func (f *fakeDriver) setInspectErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inspectErr = err
}

var _ vm.Driver = (*fakeDriver)(nil)

func (f *fakeDriver) Name() string { return "fake" }

func (f *fakeDriver) record(c string) {
	f.calls = append(f.calls, c)
}

func (f *fakeDriver) Create(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("create")
	if f.createErr != nil {
		return false, f.createErr
	}
	adopted := f.created
	f.created = true
	return adopted, nil
}

func (f *fakeDriver) Start(_ context.Context, cfg vm.Config) (vm.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("start")
	if f.startErr != nil {
		return vm.Info{}, f.startErr
	}
	if f.running && f.hash == cfg.Hash() {
		return f.infoLocked(), nil // adopted, as the Driver contract says
	}
	f.running = true
	f.pid += 100
	f.hash = cfg.Hash()
	f.exited = make(chan struct{})
	info := f.infoLocked()
	if f.boots {
		f.booted = make(chan error, 1)
		info.Booted = f.booted
	}
	return info, nil
}

func (f *fakeDriver) infoLocked() vm.Info {
	if !f.created {
		return vm.Info{Phase: vm.PhaseAbsent}
	}
	if !f.running {
		return vm.Info{Phase: vm.PhaseStopped}
	}
	return vm.Info{Phase: vm.PhaseRunning, PID: f.pid, TemplateHash: f.hash, Exited: f.exited}
}

func (f *fakeDriver) Stop(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("stop")
	if f.running {
		f.running = false
		close(f.exited)
	}
	return nil
}

func (f *fakeDriver) Inspect(context.Context) (vm.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inspectErr != nil {
		return vm.Info{}, f.inspectErr
	}
	return f.infoLocked(), nil
}

func (f *fakeDriver) Delete(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("delete")
	if f.deleteErr != nil {
		return f.deleteErr
	}
	if f.running {
		f.running = false
		close(f.exited)
	}
	f.created = false
	return nil
}

// crash makes the running process die on its own.
func (f *fakeDriver) crash() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running {
		return errors.New("not running")
	}
	f.running = false
	close(f.exited)
	return nil
}

func (f *fakeDriver) callCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == name {
			n++
		}
	}
	return n
}
