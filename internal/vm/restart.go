package vm

// RestartKeyer is implemented by a driver whose machine needs a restart for
// only part of its configuration: the host runs only the engine, so a
// Kubernetes change never restarts it, while a VM boots from the whole
// template. RestartKey must change exactly when a restart is needed.
type RestartKeyer interface {
	RestartKey(cfg Config) string
}

// RestartKeyOf is d's restart key for cfg; a driver that does not say
// needs a restart for every change of cfg.
func RestartKeyOf(d Driver, cfg Config) string {
	if r, ok := d.(RestartKeyer); ok {
		return r.RestartKey(cfg)
	}
	return cfg.Hash()
}

// SameRestartKey reports whether a running machine can be adopted for a
// configuration with restart key key and hash hash: the same template, or a
// difference that needs no restart.
func SameRestartKey(running Info, key, hash string) bool {
	return running.TemplateHash == hash || (running.RestartKey != "" && running.RestartKey == key)
}
