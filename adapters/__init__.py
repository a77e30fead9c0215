"""Platform adapters: one module a platform, each registering itself in `adapters.base`;
`adapters.base.adapter_class` imports a platform's module the first time it is asked for (so a
process that talks to one platform, or a CLI command that talks to none, loads no other SDK)."""
