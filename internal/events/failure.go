package events

// EffectFailed records an effect that failed where the machine has no failed
// state to move to (delete, inspect, stop while reconciling, publishing the
// Docker context): the machine stays, and the log says why, so `rdd events`,
// `rdd why` and the CLI error can show the driver's own words.
type EffectFailed struct {
	Machine Machine `json:"machine"`
	// Effect names what was attempted, e.g. "delete" or "inspect".
	Effect     string `json:"effect"`
	Generation int64  `json:"generation,omitempty"`
	Message    string `json:"message"`
}

func (*EffectFailed) EventType() Type { return TypeEffectFailed }

// Failure is a machine's last failed effect (EffectFailed), kept until the
// machine's next transition.
type Failure struct {
	Effect  string `json:"effect"`
	Message string `json:"message"`
	Seq     uint64 `json:"seq"`
}
