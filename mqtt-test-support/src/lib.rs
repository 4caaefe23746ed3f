//! Test support: starts mosquitto on a free loopback port, fault-injecting proxy.
