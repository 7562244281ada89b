# Verbatim example from uge-drmaa2 8.11.0 README.rst, section 'Basic API Usage', step 3
# (interactive session text kept as a string so this file is valid Python).
# Prerequisites per README: source $SGE_ROOT/$SGE_CELL/common/settings.sh; PYTHONPATH or installed package.
README_SNIPPET = r'''
     $ python
     >>> import drmaa2
     >>> print(drmaa2.get_drmaa_name())
     Univa Grid Engine Drmaa V2
'''

# Runnable equivalent of the snippet:
if __name__ == '__main__':
    import pydrmaa2.drmaa2 as drmaa2
    print(drmaa2.get_drmaa_name())
