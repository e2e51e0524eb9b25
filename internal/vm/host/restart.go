package host

import "github.com/rdd-project/rdd/internal/vm"

var _ vm.RestartKeyer = (*Driver)(nil)

// RestartKey implements vm.RestartKeyer: the host runs only the engine, so
// only a change of engine restarts it. Kubernetes runs beside the engine and
// comes and goes without touching the user's containers.
func (d *Driver) RestartKey(cfg vm.Config) string {
	return "engine=" + string(cfg.Engine)
}
