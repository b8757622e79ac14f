"""Several real ``nexus serve`` replicas over one database and one blob store."""
