// Command rdd-lima is the part of rdd that links Lima: it creates, inspects,
// starts, stops and deletes the Lima instance and runs Lima's host agent.
// It is a program of its own because linking Lima costs every command that
// links it 8-10 ms of package initialisation; rdd carries it inside its
// binary and runs it only for the lima driver.
package main

import (
	_ "github.com/lima-vm/lima/pkg/hostagent"
	_ "github.com/lima-vm/lima/pkg/instance"
	_ "github.com/lima-vm/lima/pkg/store"
)

func main() {}
