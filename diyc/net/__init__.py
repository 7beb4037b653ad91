"""Networks: bridges, addresses, published ports (network), the kernel's
netlink for the start path (netlink) and the firewall."""
