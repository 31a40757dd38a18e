"""Model zoo: Spikformer, Spikformer V2 and QKFormer built from deployable spiking parts."""
