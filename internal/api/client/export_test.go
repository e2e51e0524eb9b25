package client

// SetTrustForTest replaces c's peer policy.
func SetTrustForTest(c *Client, trust func(uid int) bool) { c.trustUID = trust }
