"""NIR: the bundle's file format (io), standard NIR import, the reference executor and third-party consumers."""
