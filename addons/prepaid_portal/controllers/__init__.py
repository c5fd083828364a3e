from . import auth, portal
