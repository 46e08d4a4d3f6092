"""Who is calling: API clients, role grants, access tokens and the permissions they carry."""
